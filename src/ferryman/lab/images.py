"""Images for local test hosts, built without a registry.

The host image is a Debian root filesystem made by debootstrap and imported; the app image is
a static busybox serving files over HTTP. Both are built once and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HOST_IMAGE = "ferryman-testhost:3"
APP_IMAGE = "ferryman-app"
HOST_PACKAGES = (
    "docker.io,docker-compose,openssh-server,curl,iproute2,nftables,iptables,procps,zstd,"
    "gzip,ca-certificates,nginx,restic"
)
# nginx is the operator's reverse proxy of the zero-downtime tests, restic the incremental
# backup engine; neither starts by itself (debootstrap forbids service starts while it
# installs, and a test host has no init): the tests start what they use.


@dataclass(frozen=True)
class HostKind:
    """A kind of test host: a Debian release and the Docker and compose it packages."""

    name: str
    suite: str  # debootstrap's name of the Debian release
    image: str
    packages: str
    compose: tuple[str, ...]  # how compose is called there


# bookworm: Docker 20.10 with docker-compose 1.29 (compose v1 names project_service_1).
# trixie: Docker 26.1 with the `docker compose` 2.26 plugin (v2 names project-service-1);
# its docker.io only recommends the CLI, so docker-cli is asked for by name.
KINDS = {
    "bookworm": HostKind("bookworm", "bookworm", HOST_IMAGE, HOST_PACKAGES, ("docker-compose",)),
    "trixie": HostKind("trixie", "trixie", "ferryman-testhost-trixie:2",
                       HOST_PACKAGES + ",docker-cli", ("docker", "compose")),
}
DEFAULT_KIND = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

# Starts the host's own dockerd and sshd; the authorised key arrives in the environment.
ENTRYPOINT = """#!/bin/sh
set -e
mkdir -p /run/sshd /root/.ssh
chmod 700 /root/.ssh
if [ -n "$AUTHORIZED_KEY" ]; then
  printf '%s\\n' "$AUTHORIZED_KEY" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -A >/dev/null
# Name lookups go nowhere: tests send traffic only to what they started themselves.
dockerd --host=unix:///var/run/docker.sock --dns 127.0.0.1 >/var/log/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -e -p 22
"""


class LabError(RuntimeError):
    pass


def docker(*args: str, input: bytes | None = None, check: bool = True,
           timeout: float | None = 600) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise LabError(f"docker {' '.join(args[:3])}... failed: {err}")
    return proc


def image_exists(name: str) -> bool:
    return docker("image", "inspect", name, check=False).returncode == 0


def host_kind(name: str) -> HostKind:
    try:
        return KINDS[name]
    except KeyError:
        raise LabError(f"unknown test-host kind {name!r} (known: {', '.join(KINDS)})") from None


def _debootstrap_image(name: str, packages: str, entrypoint: str, path_env: str,
                       mirror: str, drop: tuple[str, ...] = (), suite: str = "bookworm") -> str:
    """A Debian root filesystem with `packages`, imported as an image with `entrypoint`."""
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is missing: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="ferryman-image-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={packages}", suite,
             str(root), mirror], capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise LabError("debootstrap failed:\n" + "\n".join(proc.stdout.splitlines()[-20:]))
        entry = root / "usr/local/bin/entrypoint"
        entry.write_text(entrypoint)
        entry.chmod(0o755)
        for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", *drop):
            for junk in root.glob(pattern):
                if junk.is_file():
                    junk.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["docker", "import", "-c", 'ENTRYPOINT ["/usr/local/bin/entrypoint"]',
             "-c", f"ENV PATH={path_env}", "-", name], stdin=tar.stdout, capture_output=True,
        )
        tar.wait()
        if imp.returncode != 0:
            raise LabError(f"docker import failed: {imp.stderr.decode(errors='replace')}")
    return name


SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def ensure_host_image(kind: str = DEFAULT_KIND, mirror: str = DEBIAN_MIRROR) -> str:
    """Builds the host image of `kind` when absent (debootstrap, a minute or two)."""
    k = host_kind(kind)
    if image_exists(k.image):
        return k.image
    # Host keys are made at each start, so that every test host has its own.
    return _debootstrap_image(k.image, k.packages, ENTRYPOINT, SYSTEM_PATH, mirror,
                              drop=("etc/ssh/ssh_host_*",), suite=k.suite)


DB_IMAGE = "ferryman-db:2"
DB_PACKAGES = "postgresql,mariadb-server,redis-server,procps"


def ensure_db_image(name: str = DB_IMAGE, mirror: str = DEBIAN_MIRROR) -> str:
    """PostgreSQL, MariaDB and Redis from Debian, for the database-dump tests (no registry here).

    `docker run IMAGE postgres` (or mariadb, or redis) starts one of them in the
    foreground, as their official images would.
    """
    if image_exists(name):
        return name
    return _debootstrap_image(name, DB_PACKAGES, DB_ENTRYPOINT,
                              f"/usr/lib/postgresql/15/bin:{SYSTEM_PATH}", mirror)


DB_ENTRYPOINT = """#!/bin/sh
set -e
case "$1" in
  postgres)
    mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql
    exec su postgres -s /bin/sh -c 'exec postgres -D /var/lib/postgresql/15/main \\
      -c config_file=/etc/postgresql/15/main/postgresql.conf' ;;
  mariadb)
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    exec mariadbd --user=mysql ;;
  redis)
    mkdir -p /var/lib/redis && chown redis:redis /var/lib/redis
    exec su redis -s /bin/sh -c 'exec redis-server --bind 0.0.0.0 --protected-mode no \\
      --dir /var/lib/redis --appendonly no' ;;
  *) exec "$@" ;;
esac
"""


def _busybox() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        # A dynamic binary names its loader near the start; the app image has no libc.
        if path.exists() and b"ld-linux" not in path.read_bytes()[:16384]:
            return path
    raise LabError("a static busybox is missing: apt-get install busybox-static")


def build_app_image(tag: str, body: str, *, cmd: str | None = None, workdir: str = "/www",
                    env: dict[str, str] | None = None, extra_files: dict[str, str] | None = None,
                    name: str = APP_IMAGE, force: bool = False, blob_mb: int = 0,
                    appserver: str = "") -> str:
    """A 2 MB web app: busybox httpd on port 8080 serving `body` at / and "ok" at /health;
    `blob_mb` adds that many MB of random bytes, for transfers that take a while.
    `appserver`: the sha256 of lab/appserver.c; the image holds it compiled as
    /bin/appserver (see appserver_image)."""
    ref = f"{name}:{tag}"
    # The tag is reused only when it was built from this very definition: two tests asking
    # for one tag with different contents must not get each other's image.
    # (appserver joins the spec only when set: the other images keep their names' contents)
    spec = json.dumps([body, cmd, workdir, env, extra_files, blob_mb, *([appserver] if appserver
                                                                         else [])],
                      sort_keys=True)
    comment = "ferryman-lab " + hashlib.sha256(spec.encode()).hexdigest()[:16]
    if not force and image_exists(ref):
        made = docker("image", "inspect", "--format", "{{.Comment}}", ref, check=False)
        if made.stdout.decode().strip() == comment:
            return ref
    with tempfile.TemporaryDirectory(prefix="ferryman-app-") as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        (root / "www").mkdir()
        (root / "tmp").mkdir()
        shutil.copy2(_busybox(), root / "bin/busybox")
        for applet in ("sh", "httpd", "nc", "cat", "echo", "sleep", "ls", "wget", "sed", "date",
                       "touch", "mkdir", "rm", "env", "true", "false", "grep", "kill", "ps"):
            (root / "bin" / applet).symlink_to("busybox")
        (root / "www/index.html").write_text(body + "\n")
        (root / "www/health").write_text("ok\n")
        if appserver:
            shutil.copy2(_appserver_binary(), root / "bin/appserver")
        if blob_mb:
            (root / "data").mkdir()
            with open(root / "data/blob", "wb") as fh:
                for _ in range(blob_mb):
                    fh.write(os.urandom(1024 * 1024))
        for rel, text in (extra_files or {}).items():
            target = root / rel.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        changes = ["-c", "EXPOSE 8080", "-c", f"WORKDIR {workdir}",
                   "-c", 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]' if cmd is None
                   else f"CMD {cmd}"]
        for key, value in (env or {}).items():
            changes += ["-c", f"ENV {key}={value}"]
        tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True)
        docker("import", "-m", comment, *changes, "-", ref, input=tar.stdout)
    return ref


APPSERVER_SOURCE = Path(__file__).with_name("appserver.c")


def _appserver_binary() -> Path:
    """lab/appserver.c compiled static (it runs in an image with no libc), once per source."""
    digest = hashlib.sha256(APPSERVER_SOURCE.read_bytes()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"ferryman-appserver-{digest}"
    if out.exists():
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise LabError("a C compiler is missing: apt-get install gcc libc6-dev")
    part = out.with_suffix(".part")
    proc = subprocess.run([cc, "-static", "-Os", "-o", str(part), str(APPSERVER_SOURCE)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"compiling {APPSERVER_SOURCE.name} failed:\n{proc.stderr[-2000:]}")
    part.rename(out)
    return out


def appserver_image(version: str, *, fail_pct: int = 0, port: int = 8080,
                    sick_after: int | None = None, tag: str | None = None) -> str:
    """The app of the zero-downtime tests: lab/appserver.c (HTTP, slow requests, POST bodies,
    WebSockets, graceful SIGTERM) answering as `version`, on `port` (a build that listens
    elsewhere never passes a health check on 8080)."""
    env = {"VERSION": version, "PORT": str(port)}
    if fail_pct:
        env["FAIL_PCT"] = str(fail_pct)
    if sick_after is not None:
        env["SICK_AFTER"] = str(sick_after)
    digest = hashlib.sha256(APPSERVER_SOURCE.read_bytes()).hexdigest()
    suffix = ((f"-fail{fail_pct}" if fail_pct else "") + (f"-port{port}" if port != 8080 else "")
              + (f"-sick{sick_after}" if sick_after is not None else ""))
    return build_app_image(tag or f"as-{version}{suffix}",
                           f"appserver {version}", cmd='["/bin/appserver"]', env=env,
                           appserver=digest)
