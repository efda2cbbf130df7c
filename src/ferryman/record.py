"""The release record: one JSON line per release, rollback or abort in releases.jsonl on the
environment's first host. Release writes it and rollback reads it, so it is a typed, versioned
contract: a record of another version is read when its meaning is known, refused otherwise,
never guessed at.

Version 1 (the first releases) had no `version` key and the same fields; version 2 adds it,
`aborted` results and the journal's resume marks. A newer version than this ferryman knows is
refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

VERSION = 2
Mode = Literal["run", "compose", "bootstrap", "unchanged", "swarm"]


class Image(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ref: str
    id: str

    def short(self) -> str:
        return f"{self.ref} ({self.id.split(':')[-1][:12]})"


class ServiceChange(BaseModel):
    """What a release did (or will do) to one service on one host."""

    model_config = ConfigDict(extra="ignore")

    service: str
    host: str
    container: str
    mode: Mode
    old: Image | None = None  # what ran before (None: bootstrap)
    new: Image | None = None  # what runs after
    kept: str | None = None  # run mode: the old container, set aside under this name
    restart_policy: str | None = None  # the old container's, given back on rollback
    port: int | None = None  # blue-green: the loopback port the new side serves on


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: int = VERSION
    id: str
    kind: Literal["release", "rollback"]
    from_env: str = Field(alias="from")
    to: str
    who: str
    when: str
    duration: float = 0.0
    result: Literal["ok", "failed", "aborted"]
    services: list[ServiceChange] = []
    rolls_back: str | None = None
    error: str | None = None
    failed_step: str | None = None
    undone: list[str] = []
    undo_failed: list[str] = []
    # The lifecycle: hooks run (service, when, host, run, changes_data), the backup of TO's
    # data taken before them, the tag given to the image on TO, the watch window's result.
    hooks: list[dict[str, Any]] = []
    backup: str | None = None
    tag: str | None = None
    watch: dict[str, Any] | None = None
    # Compose files (or .env) the release made name the new image: host, service, path,
    # backup, sha256 of what it wrote.
    persisted: list[dict[str, Any]] = []

    def to_line(self) -> str:
        return json.dumps(self.model_dump(by_alias=True, exclude_none=True),
                          ensure_ascii=False, separators=(",", ":"))


@dataclass
class History:
    records: list[Record] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # why each bad line was not read


def parse_record(data: Any) -> Record:
    """One record; raises ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = data.get("version", 1)
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"record version {version!r} is newer than this ferryman reads "
                         f"({VERSION}): upgrade ferryman")
    try:
        return Record.model_validate({**data, "version": version})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}") from None


def parse_history(stdout: str) -> History:
    out = History()
    for n, line in enumerate(stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.records.append(parse_record(json.loads(line)))
        except ValueError as exc:  # a torn last line from a crash must not hide the others
            head = line[:60] + ("..." if len(line) > 60 else "")
            out.unreadable.append(f"line {n}: {exc} ({head})")
    return out
