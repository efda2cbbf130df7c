"""The host of an environment that holds its data, and the facts a data flow reads there
before it plans: which folders hold the items, which compressor both sides have."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import Config
from ...config.schema import Data
from ...data import archive as ar
from ...docker import commands as dc
from ...docker.images import pick_compression
from ...errors import BadInput, Mismatch, PreconditionFailed
from ...hosts import HostPool
from ...transport import Host
from ..transfer import tools


class DataMismatch(Mismatch):
    """An archive or an unpacked item is not what its manifest says."""


@dataclass
class Site:
    """The host of an environment that holds its data (the environment's first host)."""

    cfg: Config
    env: str
    label: str
    host: Host
    # service -> its container here, for services named by compose labels (located_site)
    containers: dict[str, str] = field(default_factory=dict)

    def container(self, name: str) -> str:
        """A container of data.stop: its own name, or the key of a service named by compose
        labels, whose container is named differently by compose v1 and v2."""
        svc = self.cfg.services.get(name)
        return self.containers.get(name, name) if svc and svc.compose else name

    @property
    def stop(self) -> list[str]:
        return [self.container(n) for n in self.data.stop]

    @property
    def service_containers(self) -> dict[str, str]:
        """container -> service, for every service of the config."""
        return {self.containers.get(s.name, s.container_name): s.name
                for s in self.cfg.services.values()}

    @property
    def data(self) -> Data:
        if self.cfg.data is None:
            raise BadInput("ferryman.yml has no data section: nothing to back up or restore")
        return self.cfg.data

    @property
    def base(self) -> str:
        return ar.folder(self.data.backup_dir, self.cfg.project)

    def folder(self, bid: str) -> str:
        return ar.folder(self.data.backup_dir, self.cfg.project, bid)


def site(cfg: Config, pool: HostPool, env: str) -> Site:
    label = pool.env(env).hosts[0].label
    return Site(cfg, env, label, pool.host(env, label))


async def located_site(cfg: Config, pool: HostPool, env: str) -> Site:
    """site(), knowing the containers of the services named by compose labels there."""
    await pool.resolve(env)
    s = site(cfg, pool, env)
    s.containers = {p.service: p.container for p in pool.placements(env) if p.host == s.label}
    return s


def wanted_items(data: Data) -> list[ar.Item]:
    # Dumps first: they need their databases running, which the snapshot does not stop.
    return ([ar.Item("dump", d.name, engine=d.engine, user=d.user or "") for d in data.dumps]
            + [ar.Item("volume", v) for v in data.volumes]
            + [ar.Item("path", p) for p in data.paths])


async def live_folders(s: Site, items: list[ar.Item], create: bool = False,
                       strict: bool = True) -> dict[str, str]:
    """Item name -> the folder that holds it on the host. A missing one is a clear error,
    or (strict=False) simply left out, for the caller to learn later."""
    out: dict[str, str] = {}
    volumes = [i.name for i in items if i.kind == "volume"]
    if volumes:
        if create:
            for name in volumes:
                await s.host.run(dc.create_volume(name), timeout=60, check=True)
        res = await s.host.run(dc.volume_mountpoints(volumes), timeout=60)
        for line in res.stdout.splitlines():
            name, _, mount = line.partition(" ")
            out[name] = mount
        missing = [v for v in volumes if v not in out]
        if missing and strict:
            raise PreconditionFailed(f"no volume {', '.join(missing)} on {s.label}",
                                     hint=f"ferryman backup {s.env} --discover lists them")
    paths = [i.name for i in items if i.kind == "path"]
    if paths:
        found = dc.parse_files_exist((await s.host.run(dc.files_exist(paths), timeout=30)).stdout)
        missing = [p for p in paths if not found.get(p)]
        if missing and not create and strict:
            raise PreconditionFailed(f"no folder {', '.join(missing)} on {s.label}")
        out.update({p: p for p in paths})
    return out


async def compression(s: Site) -> str:
    """What a snapshot on this host compresses with: the archives stay on it."""
    return pick_compression(await tools(s.host), {"zstd", "gzip"})
