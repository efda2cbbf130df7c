"""`ferryman doctor`: one small module per check, each returning findings (OK / WARN / FAIL)
with the evidence (the command and what it printed) and the fix.

  host           SSH, Docker permission and version, storage driver, cgroups, kernel, CPU
  runmode        compose labels and files, or plain `docker run`: what a release will do
  containers     not running, crash loops, exit codes, OOM kills, unhealthy; last log lines
  resources      memory against limits and the host, OOM kills (kernel log), restart loops
  logs           json-file logs nothing rotates; the daemon's default (safe fix)
  networks       the services' networks exist; each service reaches its peers' ports
  firewall       firewalld's leftover nft tables on the forward hook (safe fix)
  ports          who listens on the published ports; a host server holding 80 -> proxy
  reach          note 003's layers, stopping at the first broken one
  guards         config files naming another environment (safe fix)
  leaks          env values and config files nobody guards that name another environment
  disk           free space for the next release and the next backup
  clock          clock skew against this machine and between hosts
  certs          with --domain: the certificate served and the nginx block serving it

`runner` runs them on every host, applies the safe fixes as steps and checks again; `proxy`
plans the nginx server block that `ferryman proxy-config` installs (flows.proxy).
"""

from .findings import Evidence, Finding, Fix, Status
from .runner import CHECKS, FixRecord, HostReport, Report, apply_fixes, examine

__all__ = [
    "CHECKS",
    "Evidence",
    "Finding",
    "Fix",
    "FixRecord",
    "HostReport",
    "Report",
    "Status",
    "apply_fixes",
    "examine",
]
