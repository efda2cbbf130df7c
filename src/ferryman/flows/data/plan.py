"""What a data flow will run, fixed before it runs, and what its steps hand each other.

Every command a data step executes is built here, once, from facts read before the flow
starts; the step runs that argv and the dry run prints it. Pure: no host is touched."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...data import archive as ar
from ...transport.base import short_command


def lines(argvs: list[list[str]]) -> list[str]:
    """The dry-run lines of argvs: shell-quoted, inline scripts cut to their name."""
    return [short_command(a) for a in argvs]


def remove(paths: list[str]) -> list[str]:
    return ["rm", "-rf", "--", *paths]


@dataclass
class SnapshotPlan:
    """One snapshot: its items (archive names set), where each comes from, how it packs."""

    bid: str
    kind: str  # backup | safety
    folder: str  # the backup's folder on the host
    compression: str
    items: list[ar.Item]
    argvs: list[list[str]]  # one per item, in order

    @property
    def manifest_path(self) -> str:
        return f"{self.folder}/{ar.MANIFEST}"

    def archive(self, name: str) -> str | None:
        """The archive path of the item called `name`, if this snapshot holds one."""
        item = next((i for i in self.items if i.name == name), None)
        return f"{self.folder}/{item.archive}" if item else None


def plan_snapshot(bid: str, kind: str, folder: str, compression: str,
                  items: list[ar.Item], folders: dict[str, str],
                  follow: bool = False) -> SnapshotPlan:
    """folders: item name -> live folder, for every volume and path item. follow: each
    folder's archive is read while it is written (sync-data streams it to TO)."""
    planned, argvs = [], []
    for wanted in items:
        item = ar.Item(wanted.kind, wanted.name, engine=wanted.engine, user=wanted.user,
                       archive=ar.archive_name(wanted, compression))
        out = f"{folder}/{item.archive}"
        argvs.append(ar.dump(item, out, compression) if item.kind == "dump"
                     else ar.pack(folders[item.name], out, compression, follow))
        planned.append(item)
    return SnapshotPlan(bid, kind, folder, compression, planned, argvs)


def skeleton(p: SnapshotPlan, project: str, env: str, host: str) -> ar.Manifest:
    """The manifest a planned snapshot will write, without its counts: enough to plan
    what applying it runs (ids, archive names, compression)."""
    return ar.Manifest(p.bid, project, env, host, "", p.compression, "", kind=p.kind,
                       items=[ar.Item(i.kind, i.name, archive=i.archive, engine=i.engine,
                                      user=i.user) for i in p.items])


@dataclass
class Staging:
    """Where one folder item is unpacked and swapped in. `live` None: a volume that does
    not exist yet; it is created when the unpack runs, and the plan names it."""

    item: ar.Item
    archive: str
    live: str | None
    rid: str

    def paths(self, live: str | None = None) -> tuple[str, str, str]:
        live = live or self.live or f"<volume {self.item.name}>"
        return live, f"{live}.ferryman-new", f"{live}.ferryman-old-{self.rid}"

    def unpack(self, compression: str, live: str | None = None) -> list[list[str]]:
        live, staged, _ = self.paths(live)
        mkdir = ([["mkdir", "-p", "--", live.rsplit("/", 1)[0] or "/"]]
                 if self.item.kind == "path" else [])
        return [*mkdir, ar.unpack(self.archive, staged, compression)]

    def swap(self, live: str | None = None) -> list[str]:
        return ar.swap(*self.paths(live))

    def unswap(self, live: str | None = None) -> list[str]:
        return ar.unswap(*self.paths(live))


@dataclass
class DataState:
    """What the steps of one data flow learn and hand on, typed."""

    snapshot: ar.Manifest | None = None  # the snapshot this flow took (backup, sync's FROM)
    applied: ar.Manifest | None = None  # the backup being applied, with its counts
    safety: ar.Manifest | None = None  # the safety backup taken before an apply
    safety_id: str | None = None
    sent: int = 0  # bytes sent FROM -> TO
    live: dict[str, str] = field(default_factory=dict)  # item name -> live folder (apply)

    def applied_item(self, name: str) -> ar.Item:
        if self.applied is None:
            raise RuntimeError("no backup to apply yet: the step that brings it has not run")
        return next(i for i in self.applied.items if i.name == name)
