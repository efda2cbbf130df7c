"""host: SSH, permission to use Docker, daemon version, storage driver, cgroups, kernel, and
the CPU architecture against the images' (source note 004: what containers still take from
the host)."""

from __future__ import annotations

import json
import re

from ..docker import commands as dc
from ..transport import Result
from . import commands as cc
from .context import HostContext
from .findings import Finding, Fix, fail, ok, warn

NAME = "host"

# `uname -m` / `docker info` spellings -> the image platform's.
ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
        "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
        "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
GOOD_DRIVERS = {"overlay2", "overlayfs", "btrfs", "zfs", "fuse-overlayfs"}
OLD_DRIVERS = {"devicemapper", "aufs", "overlay"}  # removed from current Docker releases
MIN_DOCKER = (20, 10)
MIN_KERNEL = (3, 10)  # Docker's own minimum
OLD_KERNEL = (4, 0)  # overlay2 without vendor backports, cgroup v2, nftables: 4.x and later


def version_tuple(text: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", text.split("-", 1)[0].split("+", 1)[0])
    return tuple(int(n) for n in nums[:3])


def normal_arch(name: str) -> str:
    return ARCH.get(name.lower(), name.lower())


def docker_denied(text: str) -> Finding:
    """Why `docker version` failed on the server side, and what to do."""
    low = text.lower()
    if "permission denied" in low:
        return fail(NAME, "docker", "no permission to use Docker: the SSH user cannot open "
                    "the Docker socket",
                    fix=Fix("add the SSH user to the docker group (`sudo usermod -aG docker "
                             "USER`, then reconnect) or connect as root"))
    if "cannot connect to the docker daemon" in low or "is the docker daemon running" in low:
        return fail(NAME, "docker", "the Docker daemon is not running",
                    fix=Fix("start it: `systemctl start docker` (and `systemctl enable docker`)"))
    if "not found" in low:
        return fail(NAME, "docker", "docker is not installed on this host",
                    fix=Fix("install Docker (e.g. `apt-get install docker.io`)"))
    return fail(NAME, "docker", "docker does not answer", fix=Fix("see the evidence"))


def storage(driver: str) -> tuple[str, str]:
    if driver in GOOD_DRIVERS:
        return "OK", f"storage driver {driver}"
    if driver == "vfs":
        return "WARN", ("storage driver vfs copies every layer whole: slow, and each "
                        "container costs its image's full size on disk")
    if driver in OLD_DRIVERS:
        return "WARN", (f"storage driver {driver} is deprecated and removed from current "
                        "Docker releases: move to overlay2")
    return "WARN", f"storage driver {driver or 'unknown'}: not one ferryman was tried on"


async def run(ctx: HostContext) -> list[Finding]:
    out = [ok(NAME, "ssh", f"connected as {_user(ctx)} in {ctx.connect_seconds or 0:.2f}s",
              data={"connect_seconds": ctx.connect_seconds})]
    ver = await ctx.docker_version()
    if not ver.ok:
        finding = docker_denied(ver.stderr or ver.stdout)
        finding.evidence.append(ctx.evidence(ver))
        return [*out, finding]
    server = (json.loads(ver.stdout).get("Server") or {}) if ver.stdout.strip() else {}
    version = server.get("Version", "?")
    out.append(ok(NAME, "docker", f"Docker daemon {version} (API {server.get('ApiVersion')}) "
                  "answers this user", data={"version": version}))
    if version_tuple(version) < MIN_DOCKER:
        out.append(warn(NAME, "docker version", f"Docker {version} is older than "
                        f"{'.'.join(map(str, MIN_DOCKER))}: out of support",
                        evidence=[ctx.evidence(ver, f"Server.Version {version}")],
                        fix=Fix("upgrade Docker on this host")))
    res, info = await ctx.docker_info()
    uname = await ctx.cached(cc.uname())
    driver = info.get("Driver", "")
    level, text = storage(driver)
    ev = [ctx.evidence(res, f"Driver: {driver}\nDriverStatus: {info.get('DriverStatus')}")]
    out.append(ok(NAME, "storage", text, evidence=ev) if level == "OK" else
               warn(NAME, "storage", text, evidence=ev,
                    fix=Fix("use overlay2 (\"storage-driver\" in /etc/docker/daemon.json; "
                             "images must be loaded again)")))
    cg, cg_driver = str(info.get("CgroupVersion") or "?"), info.get("CgroupDriver", "?")
    out.append(ok(NAME, "cgroup", f"cgroup v{cg} ({cg_driver} driver)"
                  + (": v1 works, but Docker and systemd are phasing it out" if cg == "1" else ""),
                  evidence=[ctx.evidence(res, f"CgroupVersion: {cg}\nCgroupDriver: {cg_driver}")],
                  data={"cgroup_version": cg}))
    out.append(_kernel(ctx, info.get("KernelVersion") or "", uname))
    out.extend(await _arch(ctx, info.get("Architecture") or "", uname))
    return out


def _user(ctx: HostContext) -> str:
    spec = ctx.cfg.environments[ctx.env].host(ctx.label)
    return (spec.user if spec and spec.user else None) or "the SSH user"


def _kernel(ctx: HostContext, kernel: str, uname: Result) -> Finding:
    ev = [ctx.evidence(uname)]
    v = version_tuple(kernel)
    if v and v < MIN_KERNEL:
        return fail(NAME, "kernel", f"kernel {kernel} is older than Docker's minimum 3.10",
                    evidence=ev, fix=Fix("upgrade the kernel or the distribution"))
    if v and v < OLD_KERNEL:
        return warn(NAME, "kernel", f"kernel {kernel}: overlay2, cgroup v2 and nftables need "
                    "4.x or vendor backports (CentOS 7 era)", evidence=ev,
                    fix=Fix("plan a move to a current distribution (e.g. Rocky/Alma 9)"))
    return ok(NAME, "kernel", f"kernel {kernel}", evidence=ev, data={"kernel": kernel})


async def _arch(ctx: HostContext, docker_arch: str, uname: Result) -> list[Finding]:
    host_arch = normal_arch(docker_arch or (uname.stdout.split() or ["?"])[-1])
    _, facts = await ctx.services()
    ids = sorted({f.image_id for f in facts.values() if f.image_id})
    if not ids:
        return [ok(NAME, "architecture", f"CPU {host_arch}; no service image here to compare",
                   evidence=[ctx.evidence(uname)], data={"arch": host_arch})]
    res = await ctx.cached(dc.image_facts(ids))
    images = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            images[parts[0]] = parts[1].split("/", 1)[-1]
    refs = {f.image_id: f.image_ref for f in facts.values()}
    wrong = {refs.get(i, i): a for i, a in images.items() if normal_arch(a) != host_arch}
    ev = [ctx.evidence(uname), ctx.evidence(res)]
    if wrong:
        listed = ", ".join(f"{ref} is {arch}" for ref, arch in sorted(wrong.items()))
        return [fail(NAME, "architecture", f"CPU {host_arch}, but {listed}: such containers "
                     "fail with `exec format error` (or crawl under qemu)", evidence=ev,
                     fix=Fix(f"build the images for linux/{host_arch} (docker buildx "
                              "--platform) or publish multi-architecture images"),
                     data={"arch": host_arch, "images": images})]
    return [ok(NAME, "architecture", f"CPU {host_arch}, and so are the {len(images)} service "
               "image(s)", evidence=ev, data={"arch": host_arch, "images": images})]
