"""What runs `ferryman schedule run` every minute on the operator's machine: a crontab line,
or a systemd service and timer. Printed, never installed: the machine is the operator's."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass
class Units:
    crontab: str
    service: str
    timer: str


def command(python: str, config: str) -> list[str]:
    return [python, "-m", "ferryman", "-c", config, "schedule", "run"]


def units(python: str, config: str, workdir: str, name: str = "ferryman-schedule") -> Units:
    """python, config, workdir: absolute paths on the operator's machine."""
    argv = command(python, config)
    # cron runs jobs through /bin/sh: quoted; `%` is a newline to cron, so it is escaped.
    line = shlex.join(["cd", workdir]) + " && " + shlex.join(argv)
    crontab = f"* * * * * {line.replace('%', chr(92) + '%')} >/dev/null 2>&1\n"
    # systemd splits ExecStart on spaces and reads quotes: the same quoting serves.
    service = f"""[Unit]
Description=ferryman: run the schedules of {config} that are due
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
WorkingDirectory={workdir}
ExecStart={shlex.join(argv)}
"""
    timer = f"""[Unit]
Description=ferryman: a pass over the schedules every minute

[Timer]
OnCalendar=*-*-* *:*:00
Persistent=true
Unit={name}.service

[Install]
WantedBy=timers.target
"""
    return Units(crontab, service, timer)
