"""restic on the data host: argv builders and parsers only. Each backup is one restic
snapshot of the live folders (volumes and paths), tagged `ferryman` and with the backup id,
under the environment's name as restic's host."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..config.backups import Restic

TAG = "ferryman"


def base(r: Restic) -> list[str]:
    return ["restic", "-r", r.repository, "--password-file", r.password_file,
            *(["-o", f"sftp.command={r.sftp_command}"] if r.sftp_command else [])]


def init(r: Restic) -> list[str]:
    """Creates the repository unless it is there (`cat config` answers only in one)."""
    return ["sh", "-c", '"$@" cat config >/dev/null 2>&1 && exit 0; exec "$@" init',
            "ferryman-restic-init", *base(r)]


def backup(r: Restic, env: str, bid: str, paths: list[str]) -> list[str]:
    return [*base(r), "backup", "--json", "--host", env, "--tag", TAG, "--tag", bid, *paths]


def check(r: Restic) -> list[str]:
    return [*base(r), "check", f"--read-data-subset={r.check_subset}"]


def snapshots(r: Restic, env: str) -> list[str]:
    return [*base(r), "snapshots", "--json", "--host", env, "--tag", TAG]


def forget(r: Restic, env: str) -> list[str]:
    return [*base(r), "forget", "--host", env, "--tag", TAG, "--keep-last", str(r.keep),
            "--prune"]


def restore(r: Restic, snapshot: str, target: str, path: str) -> list[str]:
    """Puts `path` of the snapshot under target (as target/path)."""
    return [*base(r), "restore", snapshot, "--target", target, "--include", path]


@dataclass
class Summary:
    snapshot: str
    files: int
    bytes: int  # read from the folders
    added: int  # new data the repository took

    @classmethod
    def parse(cls, stdout: str) -> Summary:
        """The `summary` line of `restic backup --json`."""
        for line in reversed(stdout.splitlines()):
            try:
                d: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and d.get("message_type") == "summary":
                return cls(str(d["snapshot_id"]), int(d.get("total_files_processed", 0)),
                           int(d.get("total_bytes_processed", 0)), int(d.get("data_added", 0)))
        raise ValueError("restic printed no summary")


@dataclass
class Snapshot:
    id: str
    time: str
    bid: str  # the ferryman backup id among its tags
    paths: list[str]


def parse_snapshots(stdout: str) -> list[Snapshot]:
    out = []
    for d in json.loads(stdout or "[]"):
        tags = [t for t in d.get("tags") or [] if t != TAG]
        out.append(Snapshot(d.get("short_id") or d["id"][:8], d.get("time", ""),
                            tags[0] if tags else "", list(d.get("paths") or [])))
    return sorted(out, key=lambda s: s.time)
