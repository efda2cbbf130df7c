"""Backups that run themselves: when each job is due (cron times), and the pass that runs
what is due under the environment lock."""
