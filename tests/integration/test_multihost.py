"""Environments of more than one host, on real hosts: PROD is prod-1 and prod-2.

Four test hosts serve the whole module: test-1 runs app v2 (the demo's `web` by docker run,
`api` by docker-compose, plus `admin` by docker run); prod-1 and prod-2 run v1 the same way,
their config file naming TEST (polluted). `admin` is listed for test-1 and prod-2 only, so a
release changes it on prod-2 alone although prod-1 runs a container of that name too. test-2
joins TEST only in the config of the "images differ between FROM's hosts" test.

Tests that change PROD first put both PROD hosts back as they were (`fresh_prod`): the hosts
start once, the app is deployed again in a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from labenv import Run, ferryman

from ferryman.lab import Lab, LabHost, build_app_image, ensure_host_image
from ferryman.lab.demo import ADDRESSES, APP_DIR, CONFIG_FILE, deploy
from ferryman.lab.demo import SERVICES as APP_SERVICES

PROD = ["prod-1", "prod-2"]
STATE = "/var/lib/ferryman/shop"
BACKUPS = "/var/lib/ferryman/backups/shop"
# Drops every packet to sshd with a reset: ferryman's connection breaks at its next packet and a
# new one is refused at once (no timeout to wait for).
CUT = ("nft add table inet ferrytest && nft add chain inet ferrytest input "
       "'{ type filter hook input priority -300 ; }' && "
       "nft add rule inet ferrytest input tcp dport 22 reject with tcp reset")
MEND = "nft delete table inet ferrytest"

SERVICES = APP_SERVICES + """\
  admin:
    hosts: [test-1, {admin_on}]
    health:
      http: http://127.0.0.1:{admin_port}/health
      retries: {admin_retries}
      interval: 500ms
guards:
  - file: {config_file}
    key: base_url
    restart: [api]
"""


@dataclass
class Multi:
    lab: Lab
    hosts: dict[str, LabHost]
    workdir: Path
    images: dict[str, str]
    baseline: dict[str, dict[str, str]] = field(default_factory=dict)  # host -> name -> id

    def config(self, name: str = "ferryman.yml", test_hosts: tuple[str, ...] = ("test-1",),
               admin_port: int = 8090, admin_retries: int = 20, extra: str = "",
               ports: dict[str, int] | None = None, admin_on: str = "prod-2") -> Path:
        def host(label: str) -> str:
            port = (ports or {}).get(label, self.hosts[label].port)
            return (f"      - name: {label}\n"
                    f"        address: root@127.0.0.1:{port}\n"
                    f"        identity_file: {self.lab.key_path}\n")

        text = (
            "version: 1\nproject: shop\n"
            f"log_dir: {self.workdir}/logs\n"
            f"ssh:\n  known_hosts: {self.lab.known_hosts}\n  connect_timeout: 5\n"
            "environments:\n"
            f"  test:\n    address: {ADDRESSES['test']}\n    hosts:\n"
            + "".join(host(h) for h in test_hosts)
            + f"  prod:\n    address: {ADDRESSES['prod']}\n    hosts:\n"
            + "".join(host(h) for h in PROD)
            + "    policy:\n      allowed_tags: [\"v*\"]\n"
            + SERVICES.format(admin_port=admin_port, admin_retries=admin_retries, admin_on=admin_on,
                              config_file=CONFIG_FILE)
            + extra
        )
        path = self.workdir / name
        path.write_text(text)
        return path

    def sh(self, label: str, script: str, check: bool = True) -> str:
        return self.lab.sh(self.hosts[label], script, check=check)

    def inspect(self, label: str, name: str) -> dict:
        return json.loads(self.sh(label, f"docker inspect {name}"))[0]

    def containers(self, label: str) -> dict[str, str]:
        """name -> id of every container on the host."""
        out = self.sh(label, "docker ps -a --no-trunc --format '{{.Names}} {{.ID}}'")
        return dict(line.split() for line in out.splitlines())

    def images_on(self, label: str) -> str:
        return self.sh(label, "docker images --no-trunc --format '{{.Repository}}:{{.Tag}} "
                              "{{.ID}}' | sort")

    def serves(self, label: str, port: int) -> str:
        return self.sh(label, f"curl -s -m 5 http://127.0.0.1:{port}/", check=False).strip()

    def image_id(self, ref: str) -> str:
        out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()


def _deploy(m: Multi, label: str, image: str, base_url: str, admin: bool = True) -> None:
    host = m.hosts[label]
    deploy(m.lab, host, image, base_url)
    if admin:
        m.lab.exec(host, ["docker", "run", "-d", "--name", "admin", "-p", "8090:8080", "--init",
                          "--restart", "unless-stopped", image])


def _reset_prod(m: Multi, label: str) -> None:
    """PROD host as at the start: v1 everywhere, no v2, no ferryman state, config polluted."""
    m.sh(label, "nft delete table inet ferrytest 2>/dev/null; "
                "ids=$(docker ps -aq); [ -z \"$ids\" ] || docker rm -f -v $ids >/dev/null; "
                f"rm -rf /var/lib/ferryman {APP_DIR}; "
                f"docker rmi {m.images['v2']} >/dev/null 2>&1; true")
    _deploy(m, label, m.images["v1"], f"http://{ADDRESSES['test']}:9380")


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Multi]:
    ensure_host_image()
    images = {"v1": build_app_image("v1", "app v1"), "v2": build_app_image("v2", "app v2")}
    workdir = tmp_path_factory.mktemp("multihost")
    lab = Lab(workdir, prefix=f"ferryman-pytest-mh-{uuid.uuid4().hex[:6]}")
    try:
        started = lab.start(["test-1", "test-2", *PROD])
        m = Multi(lab, {h.role: h for h in started}, workdir, images)
        loads = [("test-1", images["v2"]), ("test-2", images["v1"])]
        loads += [(label, images["v1"]) for label in PROD]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda x: lab.load_image(m.hosts[x[0]], x[1]), loads))
        _deploy(m, "test-1", images["v2"], f"http://{ADDRESSES['test']}:9380")
        # test-2's v2 is another image under the same tag: v1, tagged v2 there.
        m.sh("test-2", f"docker tag {images['v1']} {images['v2']}")
        _deploy(m, "test-2", images["v2"], f"http://{ADDRESSES['test']}:9380", admin=False)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda label: _reset_prod(m, label), PROD))
        yield m
    finally:
        lab.remove()


@pytest.fixture()
def fresh_prod(multi: Multi) -> Multi:
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda label: _reset_prod(multi, label), PROD))
    multi.baseline = {label: multi.containers(label) for label in PROD}
    return multi


def untouched(m: Multi) -> dict[str, tuple[dict[str, str], str, str]]:
    """What 'nothing changed on PROD' is checked against: containers, images, state folder."""
    return {label: (m.containers(label), m.images_on(label),
                    m.sh(label, f"ls -R {STATE} 2>/dev/null; true"))
            for label in PROD}


# --- read-only on PROD -------------------------------------------------------------------


def test_images_differing_between_from_hosts_are_refused(multi: Multi) -> None:
    cfg = multi.config("two-test.yml", test_hosts=("test-1", "test-2"))
    before = untouched(multi)
    v1, v2 = multi.image_id(multi.images["v1"]), multi.image_id(multi.images["v2"])

    # The same tag, another image: only the ids tell them apart.
    run = ferryman(cfg, "release", "test", "prod", "--service", "web", "--yes")
    assert run.code == 2, run.err
    assert "web runs different images on the hosts of test" in run.err
    message = " ".join(run.err.split())  # the terminal may wrap the line
    for label, image_id in (("test-1", v2), ("test-2", v1)):
        assert f"{label}: {multi.images['v2']}" in message
        assert image_id.split(":")[1][:12] in message

    # Different tags.
    multi.sh("test-2", f"docker rm -f web >/dev/null && docker run -d --name web "
                       f"-p 8080:8080 --init {multi.images['v1']} >/dev/null")
    run = ferryman(cfg, "release", "test", "prod", "--service", "web", "--yes")
    assert run.code == 2, run.err
    message = " ".join(run.err.split())
    assert f"test-1: {multi.images['v2']}" in message
    assert f"test-2: {multi.images['v1']}" in message

    assert untouched(multi) == before


def test_release_refused_when_a_prod_host_is_unreachable(multi: Multi) -> None:
    before = untouched(multi)
    # Nothing listens on port 1: prod-2 refuses at once.
    cfg = multi.config("prod-2-down.yml", ports={"prod-2": 1})
    run = ferryman(cfg, "release", "test", "prod", "--yes")
    assert run.code == 3, run.err
    assert "prod-2: cannot connect to root@127.0.0.1:1" in " ".join(run.err.split())
    assert untouched(multi) == before  # prod-1 not touched, no lock left


def test_status_and_doctor_report_both_prod_hosts(multi: Multi) -> None:
    cfg = multi.config()
    run = ferryman(cfg, "status", "prod", "--json")
    assert run.code == 0, run.err
    seen = {(s["host"], s["service"]): s for s in run.json()["services"]}
    assert set(seen) == {("prod-1", "web"), ("prod-1", "api"), ("prod-2", "web"),
                         ("prod-2", "api"), ("prod-2", "admin")}
    for label in PROD:
        assert seen[(label, "web")]["image_id"] == multi.inspect(label, "web")["Image"]
        assert seen[(label, "api")]["mode"] == "compose"

    run = ferryman(cfg, "doctor", "prod", "--check", "host", "--check", "guards", "--json")
    assert run.code == 1, run.out  # the polluted config file on each host is a FAIL
    report = run.json()
    assert [(h["host"], h["reachable"]) for h in report["hosts"]] == [("prod-1", True),
                                                                       ("prod-2", True)]
    polluted = {f["host"] for f in report["findings"]
                if f["check"] == "guards" and f["status"] == "FAIL"}
    assert polluted == set(PROD)


def test_backups_sit_on_the_first_host_only(fresh_prod: Multi) -> None:
    m = fresh_prod
    cfg = m.config("data.yml", extra=f"data:\n  paths: [{APP_DIR}]\n  stop: [web]\n")
    started = m.inspect("prod-2", "web")["State"]["StartedAt"]
    run = ferryman(cfg, "backup", "prod")
    assert run.code == 0, run.err
    (made,) = ferryman(cfg, "backups", "prod", "--json").json()
    assert m.sh("prod-1", f"ls {BACKUPS}").split() == [made["id"]]
    assert m.sh("prod-2", f"ls -A {BACKUPS} 2>/dev/null; true").strip() == ""
    # prod-2's data is not in it: its services were not stopped for it.
    assert m.inspect("prod-2", "web")["State"]["StartedAt"] == started


# --- one release on both PROD hosts, then its rollback -------------------------------------


@dataclass
class Released:
    m: Multi
    run: Run
    before: dict[str, dict[str, str]]  # host -> name -> container id, before the release
    v1: str
    v2: str


@pytest.fixture(scope="module")
def released(multi: Multi) -> Released:
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda label: _reset_prod(multi, label), PROD))
    before = {label: multi.containers(label) for label in PROD}
    run = ferryman(multi.config(), "release", "test", "prod", "--yes")
    return Released(multi, run, before, multi.image_id(multi.images["v1"]),
                    multi.image_id(multi.images["v2"]))


def test_release_reaches_both_prod_hosts(released: Released) -> None:
    m, run = released.m, released.run
    assert run.code == 0, run.err
    steps = ["lock prod on prod-1",
             "transfer images test-1 -> prod-1", "transfer images test-1 -> prod-2",
             "stop old web on prod-1", "start new web on prod-1", "health of web on prod-1",
             "stop old web on prod-2", "start new web on prod-2", "health of web on prod-2",
             "compose up api on prod-1", "health of api on prod-1",
             "keep api in its compose project on prod-1",
             "compose up api on prod-2", "health of api on prod-2",
             "keep api in its compose project on prod-2",
             "stop old admin on prod-2", "start new admin on prod-2",
             "health of admin on prod-2",
             f"guard base_url in {CONFIG_FILE} on prod-1",
             f"guard base_url in {CONFIG_FILE} on prod-2"]
    for n, name in enumerate(steps, 1):
        assert f"step {n}/{len(steps)} {name}" in run.err
    # Both hosts lacked the same image: test-1 saved it once, for both.
    flat = " ".join(run.err.split())
    assert "sent by 'transfer images test-1 -> prod-2', one stream for several hosts" in flat
    assert "1 image(s) to prod-1, prod-2 from one read" in flat
    for label in PROD:
        web = m.inspect(label, "web")
        assert web["Image"] == released.v2 and web["State"]["Running"]
        assert web["Id"] != released.before[label]["web"]
        kept = [n for n in m.containers(label) if n.startswith("web.ferryman-r")]
        assert [m.containers(label)[n] for n in kept] == [released.before[label]["web"]]
        assert m.serves(label, 8080) == "app v2"
        api = m.inspect(label, "shop-api")
        assert api["Image"] == released.v2
        assert api["Config"]["Labels"]["com.docker.compose.project"] == "shop"
        assert m.serves(label, 8081) == "app v2"


def test_release_changes_a_service_only_on_its_hosts(released: Released) -> None:
    m = released.m
    assert released.run.code == 0, released.run.err
    assert "admin on prod-1" not in released.run.err
    assert m.inspect("prod-2", "admin")["Image"] == released.v2
    assert m.serves("prod-2", 8090) == "app v2"
    # prod-1 runs a container called admin too: not ferryman's to change there.
    admin = m.inspect("prod-1", "admin")
    assert admin["Id"] == released.before["prod-1"]["admin"]
    assert admin["Image"] == released.v1 and admin["State"]["Running"]
    assert not [n for n in m.containers("prod-1") if n.startswith("admin.ferryman-")]
    record = ferryman(m.config(), "history", "prod", "--json").json()[-1]
    placed = sorted((s["service"], s["host"]) for s in record["services"])
    assert placed == [("admin", "prod-2"), ("api", "prod-1"), ("api", "prod-2"),
                      ("web", "prod-1"), ("web", "prod-2")]


def test_guards_run_on_each_prod_host(released: Released) -> None:
    m = released.m
    assert released.run.code == 0, released.run.err
    for label in PROD:
        cfg = json.loads(m.sh(label, f"cat {CONFIG_FILE}"))
        assert cfg["base_url"] == f"http://{ADDRESSES['prod']}:9380"
        (backup,) = m.sh(label, f"ls {CONFIG_FILE}.ferryman-*.bak").split()
        assert ADDRESSES["test"] in m.sh(label, f"cat {backup}")
        assert ADDRESSES["prod"] in m.sh(label, "docker exec shop-api cat /www/config.json")


def test_lock_and_history_sit_on_the_first_host_only(released: Released) -> None:
    m = released.m
    assert released.run.code == 0, released.run.err
    assert "recorded release" in released.run.err and "on prod-1" in released.run.err
    (record,) = [json.loads(line) for line in
                 m.sh("prod-1", f"cat {STATE}/releases.jsonl").splitlines()]
    assert record["result"] == "ok" and record["to"] == "prod"
    assert m.sh("prod-1", f"ls {STATE}").split() == ["compose", "releases.jsonl"]
    # prod-2 holds only what its own services need: the compose override pinning api.
    assert m.sh("prod-2", f"ls {STATE}").split() == ["compose"]


def test_rollback_returns_both_prod_hosts(released: Released) -> None:
    m = released.m
    assert released.run.code == 0, released.run.err
    new = {label: m.containers(label) for label in PROD}
    run = ferryman(m.config(), "rollback", "prod", "--yes")
    assert run.code == 0, run.err
    for label in PROD:
        web = m.inspect(label, "web")
        assert web["Id"] == released.before[label]["web"] and web["State"]["Running"]
        assert web["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert m.inspect(label, "shop-api")["Image"] == released.v1
        assert m.serves(label, 8080) == "app v1"
        assert m.serves(label, 8081) == "app v1"
        # The release's container is kept in turn.
        kept = [n for n, i in m.containers(label).items() if i == new[label]["web"]]
        assert kept and kept[0].startswith("web.ferryman-r")
    admin = m.inspect("prod-2", "admin")
    assert admin["Id"] == released.before["prod-2"]["admin"] and admin["Image"] == released.v1
    assert m.containers("prod-1")["admin"] == released.before["prod-1"]["admin"]
    records = ferryman(m.config(), "history", "prod", "--json").json()
    assert [(r["kind"], r["result"]) for r in records] == [("release", "ok"), ("rollback", "ok")]
    undone = sorted((s["service"], s["host"]) for s in records[1]["services"])
    assert undone == [("admin", "prod-2"), ("api", "prod-1"), ("api", "prod-2"),
                      ("web", "prod-1"), ("web", "prod-2")]


# --- a PROD host lost in the middle of a release ---------------------------------------------


class Follow:
    """Runs ferryman and reads its stderr as it comes, to act when a line appears."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ferryman", *argv], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, text: str, timeout: float) -> None:
        with self._seen:
            ok = self._seen.wait_for(lambda: any(text in ln for ln in self.lines)
                                     or self.proc.poll() is not None, timeout)
            if not ok or not any(text in ln for ln in self.lines):
                raise AssertionError(f"never saw {text!r}:\n{''.join(self.lines)}")

    def finish(self, timeout: float) -> tuple[int, str]:
        self.proc.wait(timeout)
        self._reader.join(timeout)
        return self.proc.returncode, "".join(self.lines)


def test_host_lost_mid_release_undoes_the_other_host(fresh_prod: Multi) -> None:
    m = fresh_prod
    v1 = m.image_id(m.images["v1"])
    # admin's check on prod-2 can never pass (nothing listens on 8091): the release waits
    # there, after web and api are new on both hosts, until prod-2 is cut off.
    cfg = m.config("lost.yml", admin_port=8091, admin_retries=600)
    follow = Follow(["-c", str(cfg), "release", "test", "prod", "--yes"])
    try:
        follow.wait_for("health of admin on prod-2", timeout=300)
        # The lock is held on the first host, and only there.
        assert "owner.json" in m.sh("prod-1", f"ls {STATE}/lock")
        assert m.sh("prod-2", f"ls {STATE}").split() == ["compose"]
        assert m.inspect("prod-1", "web")["Image"] != v1  # prod-1 was changed
        m.sh("prod-2", CUT)
        code, err = follow.finish(timeout=300)
    finally:
        follow.proc.kill()
        m.sh("prod-2", MEND, check=False)

    # Lost mid-flow after changes elsewhere: a failed flow (1), or a lost host (3).
    assert code == 3, err  # a host lost: 3, whatever was undone
    flat = " ".join(err.split())
    # Lost mid-command, or found lost when the next command reconnects: either way the
    # step, the host and the cause are named.
    assert re.search(r"FAILED step 18/20 health of admin on prod-2: prod-2: "
                     r"(connection lost|cannot connect)", flat), err
    assert "prod-1: restored" in flat, err
    left = ["start new admin on prod-2", "stop old admin on prod-2",
            "keep api in its compose project on prod-2", "compose up api on prod-2",
            "start new web on prod-2", "stop old web on prod-2",
            "transfer images test-1 -> prod-2"]
    assert f"prod-2: NEEDS ATTENTION (unreachable): not undone: {'; '.join(left)}" in flat, err

    # prod-1 is wholly as before: the same run-mode containers (compose recreates api, so
    # only its image tells), nothing kept aside, v1 served, no v2 left.
    now = m.containers("prod-1")
    assert set(now) == set(m.baseline["prod-1"]) == {"web", "shop-api", "admin"}
    assert now["web"] == m.baseline["prod-1"]["web"]
    assert now["admin"] == m.baseline["prod-1"]["admin"]
    for name in ("web", "shop-api", "admin"):
        state = m.inspect("prod-1", name)
        assert state["Image"] == v1 and state["State"]["Running"], name
    assert m.serves("prod-1", 8080) == "app v1"
    assert m.serves("prod-1", 8081) == "app v1"
    assert m.images["v2"] not in m.images_on("prod-1")
    # The release is recorded as failed on prod-1, and the lock is free.
    (record,) = [json.loads(line) for line in
                 m.sh("prod-1", f"cat {STATE}/releases.jsonl").splitlines()]
    assert record["result"] == "failed"
    assert "health of admin on prod-2" in record["failed_step"]
    assert record["undo_failed"] == left
    assert "lock" not in m.sh("prod-1", f"ls {STATE}").split()
    # prod-2, reachable again, is left as the message says: new containers, old web aside.
    v2 = m.image_id(m.images["v2"])
    for name in ("web", "shop-api", "admin"):
        assert m.inspect("prod-2", name)["Image"] == v2, name
    kept = {n for n in m.containers("prod-2") if ".ferryman-" in n}
    assert kept == {f"web.ferryman-{record['id']}", f"admin.ferryman-{record['id']}"}
    # The journal on prod-1 keeps what is left to undo: `abort` returns prod-2 as well.
    aborted = ferryman(m.config(), "abort", "prod", "--yes")
    assert aborted.code == 0, aborted.err
    assert m.containers("prod-2") == {**m.baseline["prod-2"],
                                      "shop-api": m.containers("prod-2")["shop-api"]}
    assert m.inspect("prod-2", "shop-api")["Image"] == v1
    assert m.serves("prod-2", 8080) == "app v1"


def test_first_host_lost_mid_release(fresh_prod: Multi) -> None:
    """The host that holds the lock and the history is the one lost: prod-2 is undone all
    the same, and the operator is told the record is missing and the lock still held."""
    m = fresh_prod
    v1 = m.image_id(m.images["v1"])
    cfg = m.config("lost-first.yml", admin_port=8091, admin_retries=600, admin_on="prod-1")
    follow = Follow(["-c", str(cfg), "release", "test", "prod", "--yes"])
    try:
        follow.wait_for("health of admin on prod-1", timeout=300)
        m.sh("prod-1", CUT)
        code, err = follow.finish(timeout=300)
    finally:
        follow.proc.kill()
        m.sh("prod-1", MEND, check=False)

    assert code == 3, err  # a host lost: 3, whatever was undone
    flat = " ".join(err.split())
    # Lost mid-command, or found lost when the next command reconnects: either way the
    # step, the host and the cause are named.
    assert re.search(r"FAILED step 18/20 health of admin on prod-1: prod-1: "
                     r"(connection lost|cannot connect)", flat), err
    assert "prod-2: restored" in flat, err
    assert "prod-1: NEEDS ATTENTION (unreachable): not undone: start new admin on prod-1;" \
        in flat, err
    assert "after the release: prod-1: cannot connect" in flat, err
    assert "the lock of prod on prod-1 could not be given back" in flat, err
    assert "Traceback" not in err

    now = m.containers("prod-2")
    assert set(now) == set(m.baseline["prod-2"]) == {"web", "shop-api", "admin"}
    assert now["web"] == m.baseline["prod-2"]["web"]
    assert now["admin"] == m.baseline["prod-2"]["admin"]
    for name in ("web", "shop-api", "admin"):
        state = m.inspect("prod-2", name)
        assert state["Image"] == v1 and state["State"]["Running"], name
    assert m.serves("prod-2", 8080) == "app v1"
    assert m.images["v2"] not in m.images_on("prod-2")
    # Back again, prod-1 holds the journal of the dead run: the next release is refused and
    # named; `abort` (with the usual health checks) undoes on prod-1 what was left there.
    rid = json.loads(m.sh("prod-1", f"cat {STATE}/journal.json"))["id"]
    again = ferryman(m.config(), "release", "test", "prod", "--yes")
    assert again.code == 3, again.err
    assert f"unfinished release {rid}" in again.err and "ferryman abort prod" in again.err
    aborted = ferryman(m.config(), "abort", "prod", "--yes")
    assert aborted.code == 0, aborted.err
    now = m.containers("prod-1")
    assert set(now) == {"web", "shop-api", "admin"}, now
    assert now["web"] == m.baseline["prod-1"]["web"]
    assert now["admin"] == m.baseline["prod-1"]["admin"]
    for name in ("web", "shop-api", "admin"):
        state = m.inspect("prod-1", name)
        assert state["Image"] == v1 and state["State"]["Running"], name
    assert m.serves("prod-1", 8080) == "app v1"
    assert m.sh("prod-1", f"ls {STATE}").split() == ["compose", "releases.jsonl"]
