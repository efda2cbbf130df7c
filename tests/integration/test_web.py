"""The dashboard end to end: a real `ferryman web` (uvicorn) on the demo's real test hosts,
driven in Debian's Chromium by Playwright. Screenshots of each page are saved under the test
run's tmp folder (printed at the end), to be looked at.

The tests run in file order on one demo: sign in and see the drift; release TEST -> PROD from
the page, reloading midway and watching from a second browser; roll back from History; a CLI
release shows up live; back up and verify from Data; a viewer's POST is refused.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferryman.cli.common import log_dir
from ferryman.config import load_config
from ferryman.lab.demo import Demo, down, up
from ferryman.web.auth import Role, UserStore, users_path_for
from ferryman.web.runs import RunStore

pytestmark = pytest.mark.integration
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (scripts/browser installs it)",
                allow_module_level=True)

DATA = """\
data:
  paths: [/opt/shop]
  stop: [web, shop-api]
  backup_dir: /var/lib/ferryman/backups
"""
PASSWORD = "a long enough passphrase"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@dataclass
class Site:
    demo: Demo
    url: str
    shots: Path
    runs: RunStore

    def shot(self, page: object, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]

    def image(self, role: str, container: str) -> str:
        return self.demo.lab.sh(self.demo.hosts[role],
                                f"docker inspect --format '{{{{.Image}}}}' {container}").strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ferryman web exited {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"ferryman web did not listen on {port}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("web")
    prefix = f"ferryman-pytest-web-{uuid.uuid4().hex[:6]}"
    made = up(work / "demo", prefix=prefix)
    server = None
    try:
        text = made.config.read_text().replace(
            'allowed_tags: ["v*"]', 'allowed_tags: ["v*"]\n      confirm: true')
        # The runs' logs outlive the demo's folder, for a look after a failure.
        text = re.sub(r"(?m)^log_dir: .*$", f"log_dir: {work / 'logs'}", text)
        made.config.write_text(text + DATA)
        users = UserStore(users_path_for(made.config))
        users.add("ada", Role.ADMIN, PASSWORD)
        users.add("vera", Role.VIEWER, PASSWORD)
        port = _free_port()
        log = (work / "web.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "ferryman", "-c", str(made.config), "web", "--bind",
             f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        _wait_port(port, server)
        shots = work / "screenshots"
        shots.mkdir()
        yield Site(made, f"http://127.0.0.1:{port}", shots,
                   RunStore(log_dir(load_config(made.config))))
        print(f"\nscreenshots of the dashboard: {shots}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        down(work / "demo", prefix)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _page(browser: object, site: Site, user: str, **context: object) -> object:
    ctx = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **context})  # type: ignore[attr-defined]
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors
    page.goto(site.url + "/")
    page.fill("#name", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(site.url + "/")
    return page


@pytest.fixture(scope="module")
def admin(browser: object, site: Site) -> Iterator[object]:
    page = _page(browser, site, "ada")
    yield page
    assert page.errors == []  # type: ignore[attr-defined]  # no script error, no CSP refusal
    page.context.close()  # type: ignore[attr-defined]


def _done(page: object, site: Site, timeout: float = 120_000) -> None:
    """Waits for the run on the page to end well; else says how it ended."""
    try:
        page.wait_for_selector("#run-head.status-ok", timeout=timeout)  # type: ignore[attr-defined]
    except sync_api.TimeoutError:
        site.shot(page, "failed-run")
        raise AssertionError(page.locator("#run").inner_text()[:3000]) from None  # type: ignore[attr-defined]


def _drift(page: object, service: str) -> str:
    return page.locator(f"#svc-{service} .badge").inner_text()  # type: ignore[attr-defined]


def test_sign_in_and_see_test_and_prod_side_by_side(admin: object, site: Site) -> None:
    page = admin
    assert _drift(page, "web") == "differs" and _drift(page, "api") == "differs"
    row = page.locator("#svc-web").inner_text()  # type: ignore[attr-defined]
    assert "ferryman-app:v2" in row and "ferryman-app:v1" in row and "docker run" in row
    assert "compose shop/api" in page.locator("#svc-api").inner_text()  # type: ignore[attr-defined]
    assert "docker 20.10" in page.locator("#env-prod").inner_text()  # type: ignore[attr-defined]
    site.shot(page, "01-overview-before")


def test_doctor_finds_prods_config_naming_test_and_fixes_it(admin: object, site: Site) -> None:
    page = admin
    page.goto(site.url + "/doctor?env=prod")  # type: ignore[attr-defined]
    bad = page.locator(".finding.fail", has_text="guards").inner_text()  # type: ignore[attr-defined]
    assert "10.0.0.58" in bad and "safe" in bad
    site.shot(page, "02-doctor-prod")
    # The guard's fix, and the log rotation default for daemon.json.
    page.click("text=Apply 2 safe fix(es)")  # type: ignore[attr-defined]
    assert "fix guards" in page.locator("#steps").inner_text()  # type: ignore[attr-defined]
    page.fill("#confirm-prod", "prod")  # type: ignore[attr-defined]
    page.click("#go")  # type: ignore[attr-defined]
    _done(page, site)
    page.goto(site.url + "/doctor?env=prod")  # type: ignore[attr-defined]
    assert page.locator(".finding.fail", has_text="guards").count() == 0  # type: ignore[attr-defined]
    config = site.demo.lab.sh(site.demo.hosts["prod"], "cat /opt/shop/app_config.json")
    assert "10.0.0.57" in config and "10.0.0.58" not in config


def test_release_test_to_prod_from_the_page_reloading_midway(admin: object, browser: object,
                                                             site: Site) -> None:
    page = admin
    test_web = site.image("test", "web")
    page.goto(site.url + "/")  # type: ignore[attr-defined]
    page.click("text=Release test → prod")  # type: ignore[attr-defined]
    page.click("#see-plan")  # type: ignore[attr-defined]
    steps = page.locator("#steps > li")  # type: ignore[attr-defined]
    assert steps.count() >= 7
    plan_text = page.locator("#steps").inner_text()  # type: ignore[attr-defined]
    assert "transfer images test-1 -> prod-1" in plan_text and "$ " in plan_text
    go = page.locator("#go")  # type: ignore[attr-defined]
    assert go.is_disabled()  # prod asks for its name
    site.shot(page, "03-release-plan")
    page.fill("#confirm-prod", "prod")  # type: ignore[attr-defined]
    go.click()
    page.wait_for_url(re.compile(r".*/runs/\d{8}-\d{6}-release-\d+-[0-9a-f]{6}$"))  # type: ignore[attr-defined]
    run_url = page.url  # type: ignore[attr-defined]
    # Midway: once a step has finished, reload; the log goes on from where the page was.
    page.wait_for_selector("#steps li.ok")  # type: ignore[attr-defined]
    page.reload()  # type: ignore[attr-defined]
    watcher = browser.new_context().new_page()  # type: ignore[attr-defined]
    watcher.goto(site.url + "/login")
    watcher.fill("#name", "vera")
    watcher.fill("#password", PASSWORD)
    watcher.click("button[type=submit]")
    watcher.goto(run_url)
    for p in (page, watcher):
        _done(p, site)
    text = page.locator("#steps").inner_text()  # type: ignore[attr-defined]
    assert "FAILED" not in text and text.count("ok") >= 8
    assert page.locator("#steps li.ok").count() == page.locator("#steps li").count()  # type: ignore[attr-defined]
    assert watcher.locator("#steps li.ok").count() == page.locator("#steps li").count()
    assert "by ada" in page.locator("#run-head").inner_text()  # type: ignore[attr-defined]
    site.shot(page, "04-release-run")
    watcher.context.close()
    # PROD now runs TEST's very image, and the overview says so.
    assert site.image("prod", "web") == test_web
    page.goto(site.url + "/")  # type: ignore[attr-defined]
    assert _drift(page, "web") == "same" and _drift(page, "api") == "same"
    last = page.locator("#env-prod").inner_text()  # type: ignore[attr-defined]
    assert "release" in last and "ada" in last
    site.shot(page, "05-overview-after")


def test_roll_back_from_history(admin: object, site: Site) -> None:
    page = admin
    page.goto(site.url + "/history?env=prod")  # type: ignore[attr-defined]
    assert page.locator("table.history tbody tr").count() == 1  # type: ignore[attr-defined]
    trail = page.locator("table.audit").inner_text()  # type: ignore[attr-defined]
    assert "ada" in trail and "release" in trail and "ok" in trail
    site.shot(page, "06-history")
    page.locator("table.history a.button", has_text="Roll back").first.click()  # type: ignore[attr-defined]
    assert "roll back prod" in page.locator("h1").inner_text()  # type: ignore[attr-defined]
    page.fill("#confirm-prod", "prod")  # type: ignore[attr-defined]
    page.click("#go")  # type: ignore[attr-defined]
    _done(page, site)
    page.goto(site.url + "/")  # type: ignore[attr-defined]
    assert _drift(page, "web") == "differs"
    assert "ferryman-app:v1" in page.locator("#svc-web").inner_text()  # type: ignore[attr-defined]


def test_a_cli_release_shows_up_live(admin: object, browser: object, site: Site) -> None:
    page = admin
    # A second tab stays on the overview: it must refresh itself when PROD changes.
    overview = admin.context.new_page()  # type: ignore[attr-defined]
    overview.goto(site.url + "/")
    assert _drift(overview, "web") == "differs"
    before = set(site.runs.ids())
    cli = subprocess.Popen([sys.executable, "-m", "ferryman", "-c", str(site.demo.config),
                            "release", "test", "prod", "--yes"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (new := set(site.runs.ids()) - before) and time.monotonic() < deadline:
            time.sleep(0.1)
        [rid] = new
        page.goto(f"{site.url}/runs")  # type: ignore[attr-defined]
        page.click(f"a[href='/runs/{rid}']")  # type: ignore[attr-defined]
        finished_at_load = page.locator("#run").get_attribute("data-finished")  # type: ignore[attr-defined]
        _done(page, site)
        assert cli.wait(60) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
    done = page.locator("#steps li.ok").count()  # type: ignore[attr-defined]
    assert done >= 5 and done == page.locator("#steps li").count()  # type: ignore[attr-defined]
    # Opened while the CLI was still at work, the page followed it to its end.
    assert finished_at_load == "no"
    overview.wait_for_selector("#svc-web .badge.drift-same", timeout=25_000)
    overview.close()


def test_back_up_verify_download_and_restore_from_the_data_page(admin: object, site: Site) -> None:
    page = admin
    page.goto(site.url + "/data?env=prod")  # type: ignore[attr-defined]
    page.click("text=Back up prod now")  # type: ignore[attr-defined]
    assert "stopped during the snapshot" in page.locator("main").inner_text()  # type: ignore[attr-defined]
    page.fill("#confirm-prod", "prod")  # type: ignore[attr-defined]
    page.click("#go")  # type: ignore[attr-defined]
    _done(page, site)
    assert site.demo.lab.sh(site.demo.hosts["prod"],
                            "docker inspect --format '{{.State.Running}}' web").strip() == "true"
    page.goto(site.url + "/data?env=prod")  # type: ignore[attr-defined]
    row = page.locator("table.backups tbody tr").first  # type: ignore[attr-defined]
    assert "never" in row.inner_text()
    row.locator("button", has_text="Verify").click()
    _done(page, site)
    page.goto(site.url + "/data?env=prod")  # type: ignore[attr-defined]
    assert "verify ok" in page.locator("table.backups tbody tr").first.inner_text()  # type: ignore[attr-defined]
    site.shot(page, "07-data")
    bid = page.locator("table.backups tbody tr").first.get_attribute("id")  # type: ignore[attr-defined]
    got = page.request.get(f"{site.url}/data/prod/{bid}/download")  # type: ignore[attr-defined]
    assert got.status == 200 and got.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(got.body())) as tar:
        assert "./manifest.json" in tar.getnames()
    page.goto(site.url + "/history?env=prod")  # type: ignore[attr-defined]
    assert "download" in page.locator("table.audit").inner_text()  # type: ignore[attr-defined]
    page.goto(site.url + "/data?env=prod")  # type: ignore[attr-defined]
    # Restore it: the plan first, then PROD's name typed.
    config_before = site.demo.lab.sh(site.demo.hosts["prod"], "cat /opt/shop/app_config.json")
    site.demo.lab.sh(site.demo.hosts["prod"], "echo scribbled > /opt/shop/scratch.txt")
    page.locator("table.backups tbody tr").first.locator("text=Restore…").click()  # type: ignore[attr-defined]
    plan = page.locator("main").inner_text()  # type: ignore[attr-defined]
    assert "safety backup is taken first" in plan and "swap" in plan
    page.fill("#confirm-prod", "prod")  # type: ignore[attr-defined]
    page.click("#go")  # type: ignore[attr-defined]
    _done(page, site)
    after = site.demo.lab.sh(site.demo.hosts["prod"], "ls /opt/shop; cat /opt/shop/app_config.json")
    assert "scratch.txt" not in after and config_before.strip() in after
    page.goto(site.url + "/")  # type: ignore[attr-defined]
    assert "old" in page.locator("#env-prod").inner_text()  # type: ignore[attr-defined]


def test_doctor_and_logs_pages(admin: object, site: Site) -> None:
    page = admin
    page.goto(site.url + "/doctor?env=test")  # type: ignore[attr-defined]
    assert page.locator(".finding").count() > 3  # type: ignore[attr-defined]
    assert page.locator(".finding.fail").count() == 0  # type: ignore[attr-defined]
    site.shot(page, "08-doctor-test")
    # busybox httpd logs nothing: write into the container's log through its PID 1's stdout.
    say = "docker exec web sh -c 'echo {} > /proc/1/fd/1'"
    site.demo.lab.sh(site.demo.hosts["prod"], say.format("first-line-for-the-page"))
    page.goto(site.url + "/logs?env=prod&service=web")  # type: ignore[attr-defined]
    assert "first-line-for-the-page" in page.locator("#log-lines").inner_text()  # type: ignore[attr-defined]
    page.click("#follow")  # type: ignore[attr-defined]
    time.sleep(1)  # the follow stream attaches
    site.demo.lab.sh(site.demo.hosts["prod"], say.format("a-line-while-following"))
    page.wait_for_selector("#log-lines >> text=a-line-while-following")  # type: ignore[attr-defined]
    site.shot(page, "09-logs")
    page.click("#follow")  # type: ignore[attr-defined]


def test_a_viewer_sees_no_buttons_and_a_forged_post_is_refused(browser: object,
                                                              site: Site) -> None:
    page = _page(browser, site, "vera")
    assert page.locator("text=Release test → prod").count() == 0  # type: ignore[attr-defined]
    token = page.locator("meta[name=csrf-token]").get_attribute("content")  # type: ignore[attr-defined]
    runs, prod_web = site.runs.ids(), site.image("prod", "web")
    res = page.request.post(site.url + "/act/release", form={  # type: ignore[attr-defined]
        "from": "test", "to": "prod", "csrf": token, "confirm": "prod"},
        headers={"Origin": site.url}, max_redirects=0)
    assert res.status == 403 and "may not change prod" in res.text()
    assert site.runs.ids() == runs and site.image("prod", "web") == prod_web
    page.context.close()  # type: ignore[attr-defined]


UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')).filter(el =>
    !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
    !(el.textContent || '').trim()).map(el => el.outerHTML)"""


def test_every_control_has_a_label_and_the_keyboard_reaches_the_release(
        admin: object, site: Site) -> None:
    page = admin
    for path in ("/", "/release", "/plan/release?from=test&to=prod", "/data?env=prod",
                 "/history?env=prod", "/logs?env=test&service=api"):
        page.goto(site.url + path)  # type: ignore[attr-defined]
        assert page.evaluate(UNLABELLED) == [], path  # type: ignore[attr-defined]
    page.goto(site.url + "/")  # type: ignore[attr-defined]
    for _ in range(40):  # Tab through the page until the release link has the focus
        page.keyboard.press("Tab")  # type: ignore[attr-defined]
        if "Release test" in page.evaluate("document.activeElement.textContent"):  # type: ignore[attr-defined]
            break
    else:
        raise AssertionError("the release link is not reachable with Tab")
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/release\?from=test&to=prod"))  # type: ignore[attr-defined]


def test_at_phone_width_and_without_javascript(browser: object, site: Site) -> None:
    phone = _page(browser, site, "ada", viewport={"width": 390, "height": 844})
    width = phone.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= 392, f"the overview is {width}px wide at 390"
    site.shot(phone, "10-overview-phone")
    phone.context.close()  # type: ignore[attr-defined]
    plain = _page(browser, site, "vera", java_script_enabled=False)
    assert "ferryman-app" in plain.locator("#svc-web").inner_text()  # type: ignore[attr-defined]
    rid = next(r for r in site.runs.ids() if "-release-" in r)
    plain.goto(f"{site.url}/runs/{rid}")  # type: ignore[attr-defined]
    assert plain.locator("#steps li").count() > 0  # type: ignore[attr-defined]
    plain.context.close()  # type: ignore[attr-defined]
