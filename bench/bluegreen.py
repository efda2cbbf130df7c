"""Blue-green benchmark: 20 switches through Debian's nginx under ~200 requests/s (GETs, 4 KB
POSTs, 1 in 100 a 5 s request) and 8 WebSocket clients; prints failed requests, the version
split, switch times and the WebSocket reconnections. Then a canary 5/25/50/100 with the new
side's share measured at each step. With `wrk` installed (apt-get install wrk), a last pass
has wrk's own keep-alive load beside more switches as a cross-check.

Run: .venv/bin/python bench/bluegreen.py [bookworm|trixie] [keepalive]
(needs a local Docker engine; starts and removes two test hosts). `keepalive`: the site
keeps nginx's default keep-alive (see docs/zero-downtime.md for why the tests turn it off on
nginx below 1.27.4). Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ferryman.lab.load import Load, split
from ferryman.lab.proxysite import Background, Site, started_site

SWITCHES = 20
RATE = 200


def ferryman(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ferryman", "-c", str(cfg), *args],
                          capture_output=True, text=True, timeout=600)


def switches(site: Site, cfg: Path, count: int, first: int) -> list[tuple[str, float, float]]:
    out = []
    for n in range(first, first + count):
        site.on_test(f"v{n}")
        began = time.monotonic()
        run = ferryman(cfg, "release", "test", "prod", "--yes")
        if run.returncode != 0:
            print(f"release v{n} failed ({run.returncode}):\n{run.stderr[-3000:]}")
            break
        step = re.search(r"switch nginx to new web.*?ok \(([\d.]+)s\)", run.stderr, re.S)
        out.append((f"v{n}", time.monotonic() - began, float(step.group(1)) if step else -1))
    return out


def canary(site: Site, cfg: Path, n: int) -> None:
    """release --canary 5,25,50,100: the new side's share measured at each step over 3000
    new visitors, then promoted."""
    site.on_test(f"v{n}")
    proc = subprocess.Popen([sys.executable, "-m", "ferryman", "-c", str(cfg), "release",
                             "test", "prod", "--yes", "--canary", "5,25,50,100", "--step",
                             "30s"], stderr=subprocess.PIPE, text=True)
    shares = []
    for weight in (5, 25, 50):
        while not site.generation().endswith(f"-{weight}") and proc.poll() is None:
            time.sleep(0.2)
        gen = site.generation()
        seen = asyncio.run(split(site.url, 3000))
        share = 100.0 * seen.get(f"v{n}", 0) / sum(seen.values())
        steady = "" if site.generation() == gen else " (the step changed while measured)"
        shares.append(f"{weight}% -> {share:.1f}%{steady}")
    subprocess.run([sys.executable, "-m", "ferryman", "-c", str(cfg), "canary", "prod",
                    "promote"], capture_output=True)
    err = proc.communicate(timeout=300)[1]
    forced = asyncio.run(split(site.url, 100, headers={"X-Canary": "1"}))
    print(f"  canary 5/25/50/100 (exit {proc.returncode}), measured share of the new side: "
          f"{', '.join(shares)}; after promote: {forced}")
    if proc.returncode:
        print(err[-2000:])


def main(kind: str, keepalive: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="ferryman-bench-bg-") as tmp, \
            started_site(Path(tmp), f"ferryman-bench-bg-{uuid.uuid4().hex[:6]}", kind,
                         keepalive) as site:
        cfg = site.config()
        setup = ferryman(cfg, "proxy-upstream", "prod")
        assert setup.returncode == 0, setup.stderr
        site.use_upstream()
        nginx = site.prod_sh("nginx -v 2>&1").strip()
        print(f"{kind}: {nginx}, keep-alive {'on' if keepalive else 'off'}, "
              f"{SWITCHES} switches at {RATE} requests/s")
        with Background(Load(site.url, rate=RATE, ws_clients=8, slow_every=100,
                             max_seconds=40)) as base:
            time.sleep(40)
        b = base.results.summary() if base.results else {}
        print(f"  baseline, 40 s with no release: {b.get('requests')} requests, failed "
              f"{b.get('failed')}, longer than their own duration + 1 s: {b.get('late')}, "
              f"p50 {b.get('p50_ms')} ms, p99 {b.get('p99_ms')} ms, max {b.get('max_ms')} ms")
        start = time.monotonic()
        with Background(Load(site.url, rate=RATE, ws_clients=8, slow_every=100,
                             max_seconds=1200)) as bg:
            done = switches(site, cfg, SWITCHES, 2)
        results = bg.results
        assert results is not None
        s = results.summary()
        print(f"  releases: {len(done)} in {time.monotonic() - start:.0f} s; release wall "
              f"median {sorted(d for _, d, _ in done)[len(done) // 2]:.1f} s; switch step "
              f"(write, nginx -t, reload, confirmed) median "
              f"{sorted(x for _, _, x in done)[len(done) // 2]:.2f} s")
        print(f"  requests: {s['requests']}, failed: {s['failed']} {s['errors']}, GETs sent "
              f"again on a closed keep-alive connection: {s['retried']}, longer than their "
              f"own duration + 1 s: {s['late']}")
        print(f"  latency (not the 5 s ones): p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, "
              f"max {s['max_ms']} ms; the client's own longest stall {s['client_max_stall_s']} s")
        print(f"  versions answering: {s['versions']}")
        print(f"  WebSockets: closes by code {s['ws_closes']}, longest gap to the next frame "
              f"{s['ws_max_gap_s']} s")
        canary(site, cfg, 2 + SWITCHES + 10)
        if shutil.which("wrk"):
            wrk = subprocess.Popen(["wrk", "-t2", "-c32", "-d60s", "--latency",
                                    site.url + "/"], stdout=subprocess.PIPE, text=True)
            more = switches(site, cfg, 5, 2 + SWITCHES)
            out = wrk.communicate(timeout=120)[0]
            errors = re.search(r"Socket errors:.*", out)
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            total = re.search(r"(\d+) requests in", out)
            print(f"  wrk beside {len(more)} more switches: {total.group(1) if total else '?'} "
                  f"requests, non-2xx {non2xx.group(1) if non2xx else 0}, "
                  f"{errors.group(0) if errors else 'no socket errors'}")
        else:
            print("  wrk is not installed (apt-get install wrk): no cross-check")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bookworm", "keepalive" in sys.argv[2:])
