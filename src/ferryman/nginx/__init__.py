"""The operator's nginx: the upstream file ferryman owns and the commands that switch it."""
