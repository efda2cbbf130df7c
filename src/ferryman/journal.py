"""The journal of a flow in progress, kept on each locked environment's first host.

Written before each step that changes a host (the step reached, and the data its undo needs)
and removed once every host is as planned. If ferryman dies midway (the laptop sleeps, the VPN
drops, kill -9), the journal stays: the next mutating command on the environment names it and
refuses to start over it; `ferryman resume ENV` finishes the flow, `ferryman abort ENV` undoes
it (undo.py rebuilds each undo from its data).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import PreconditionFailed
from .state import ABSENT, now_iso, read_file, state_dir
from .transport import CommandFailed, Host

if TYPE_CHECKING:
    from .locking import EnvLock
    from .steps import Step

VERSION = 1
# Written beside, checked for its full length, then renamed: a run killed while sending
# never leaves half a journal.
_WRITE = ('mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && '
          '[ "$(wc -c < "$1.tmp")" -eq "$2" ] && mv -f "$1.tmp" "$1"')


def journal_path(project: str) -> str:
    return f"{state_dir(project)}/journal.json"


def write_journal(project: str, size: int) -> list[str]:
    return ["sh", "-c", _WRITE, "ferryman-journal", journal_path(project), str(size)]


def remove_journal(project: str) -> list[str]:
    return ["rm", "-f", "--", journal_path(project)]


@dataclass
class Entry:
    n: int
    name: str
    host: str | None
    status: str  # started | done
    undo: dict[str, Any] | None


@dataclass
class Journal:
    flow: str  # release, rollback, restore...
    rid: str
    env: str  # the environment the flow changes (its target)
    project: str
    owner: str
    command: str
    context: dict[str, Any] = field(default_factory=dict)  # what resume needs to plan again
    entries: list[Entry] = field(default_factory=list)
    total: int = 0
    state: str = "running"  # running | undo failed
    since: str = field(default_factory=now_iso)
    hosts: list[tuple[str, Host]] = field(default_factory=list, repr=False)
    written: bool = False
    resumes: bool = False  # this run finishes the flow of the journal it replaces

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION, "flow": self.flow, "id": self.rid, "env": self.env,
            "owner": self.owner, "command": self.command, "since": self.since,
            "state": self.state, "total": self.total, "context": self.context,
            "steps": [e.__dict__ for e in self.entries],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], project: str) -> Journal:
        if d.get("version") != VERSION:
            raise PreconditionFailed(
                f"the journal of {d.get('flow', 'a flow')} {d.get('id', '?')} is of version "
                f"{d.get('version')!r}; this ferryman reads version {VERSION}",
                hint="finish it with the ferryman version that started it")
        j = cls(d["flow"], d["id"], d["env"], project, d.get("owner", "?"),
                d.get("command", ""), d.get("context") or {}, total=int(d.get("total") or 0),
                state=d.get("state", "running"), since=d.get("since", ""))
        j.entries = [Entry(e["n"], e["name"], e.get("host"), e["status"], e.get("undo"))
                     for e in d.get("steps") or []]
        j.written = True
        return j

    @property
    def reached(self) -> str:
        if not self.entries:
            return "before its first change"
        last = self.entries[-1]
        return f"step {last.n}/{self.total} {last.name} ({last.status})"

    def describe(self) -> str:
        return (f"an unfinished {self.flow} {self.rid} ({self.command}, by {self.owner} since "
                f"{self.since}), stopped at {self.reached}"
                + (" after an undo failed" if self.state == "undo failed" else ""))

    async def _save(self) -> None:
        data = json.dumps(self.to_dict(), ensure_ascii=False).encode()
        await asyncio.gather(*(host.run(write_journal(self.project, len(data)), input=data,
                                        timeout=30, check=True) for _, host in self.hosts))
        self.written = True

    async def started(self, n: int, total: int, step: Step) -> None:
        self.total = total
        self.entries.append(Entry(n, step.name, step.host, "started", step.undo_data))
        await self._save()

    async def noted(self, n: int, step: Step) -> None:
        for e in self.entries:
            if e.n == n:
                e.undo = step.undo_data
        await self._save()

    async def finished(self, n: int, step: Step) -> None:
        for e in self.entries:
            if e.n == n:
                e.status = "done"
                e.undo = step.undo_data  # a step may learn its undo data as it runs
        await self._save()

    async def mark(self, state: str, failed: list[str]) -> None:
        self.state = state
        self.context["undo_failed"] = failed
        await self._save()

    async def remove(self) -> None:
        await asyncio.gather(*(host.run(remove_journal(self.project), timeout=30)
                               for _, host in self.hosts))
        self.written = False

    async def refuse_unfinished(self, locks: list[EnvLock] | Any) -> None:
        """Raises when any locked environment holds an unfinished flow's journal."""
        if self.resumes:
            return
        for lk in locks:
            found = await read_journal(lk.host, self.project, lk.label)
            if found is not None:
                raise PreconditionFailed(
                    f"{lk.env} has {found.describe()}", host=lk.label,
                    hint=f"ferryman resume {found.env} finishes it; ferryman abort "
                         f"{found.env} undoes it")


async def read_journal(host: Host, project: str, label: str) -> Journal | None:
    res = await host.run(read_file(journal_path(project)), timeout=30)
    if res.exit_status == ABSENT:
        return None
    if not res.ok:
        raise CommandFailed(res, f"cannot read the journal on {label}")
    try:
        data = json.loads(res.stdout)
    except ValueError:
        raise PreconditionFailed(
            f"the journal on {label} ({journal_path(project)}) is unreadable", host=label,
            hint="read it by hand; remove it once the hosts are as they should be") from None
    return Journal.from_dict(data, project)
