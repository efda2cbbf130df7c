"""Pure Docker knowledge: argv builders and models of what `docker inspect` says."""
