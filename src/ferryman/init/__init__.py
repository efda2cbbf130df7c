"""`ferryman init`: read every container of every host and propose a ferryman.yml.

  read       argv builders for what init runs on hosts (all read-only) and their parsers
  facts      one container as init sees it, from `docker inspect`
  classify   pure: monitoring or management, store (database, search, ...) or app; mounts
  propose    pure: the facts of every host -> a proposal, each guessed value with its reason:
             services and their health, environments and policy, project; with
  plan_data    volumes, folders, the stop order and never_stop
  plan_guards  config files under bind mounts whose values name an environment
  proposal   what a proposal is made of, and where every container runs
  render     pure: a proposal -> ferryman.yml text with a comment on every guessed value
  survey     reads the hosts (through the transport) into facts

Nothing here changes a server: the commands are docker ps/inspect, hostname, find, base64 of
small config files and HTTP GETs to the host's own published ports.
"""
