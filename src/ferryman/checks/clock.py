"""clock: how far each host's clock is from the operator's machine, and hosts from each other.

The host's time is read with `date +%s.%N` over SSH; it was read at some moment between
sending the command and getting the answer, so the operator's clock is taken at the middle of
that round trip and half the round trip is the uncertainty (as NTP does). Of a few samples,
the one with the shortest round trip is kept. Clocks apart break more than logs: TOTP codes
(30 s steps), token and cookie expiry, TLS validity, S3 signatures (15 minutes), and the
order of events between hosts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import commands as cc
from .context import HostContext
from .findings import Evidence, Finding, Fix, fail, ok, warn

NAME = "clock"
SAMPLES = 3
WARN_SECONDS = 1.0
FAIL_SECONDS = 30.0


@dataclass
class Sample:
    sent: float  # operator's wall clock when the command left
    rtt: float  # seconds until the answer came back (monotonic clock)
    host: float | None  # the host's time, seconds since the epoch
    resolution: float = 0.0  # 1 s when the host's date has no %N


@dataclass
class Measure:
    offset: float  # host minus operator, seconds: > 0 means the host is ahead
    uncertainty: float
    rtt: float

    def certain_skew(self) -> float:
        """The least the clocks are apart, given the uncertainty."""
        return max(0.0, abs(self.offset) - self.uncertainty)


def parse_date(stdout: str) -> tuple[float | None, float]:
    """The host's time from `date +%s.%N`, and its resolution (busybox prints a literal N)."""
    text = stdout.strip()
    secs, _, frac = text.partition(".")
    if not secs.lstrip("-").isdigit():
        return None, 0.0
    if frac.isdigit():
        return float(f"{secs}.{frac}"), 0.0
    return float(secs), 1.0


def measure(samples: Sequence[Sample]) -> Measure | None:
    good = [s for s in samples if s.host is not None]
    if not good:
        return None
    best = min(good, key=lambda s: s.rtt)
    assert best.host is not None
    middle = best.sent + best.rtt / 2
    # A whole-second clock may be up to 1 s past what it prints.
    offset = best.host + best.resolution / 2 - middle
    return Measure(round(offset, 4), round(best.rtt / 2 + best.resolution / 2, 4),
                   round(best.rtt, 4))


def judge(skew: float) -> str:
    return "FAIL" if skew >= FAIL_SECONDS else "WARN" if skew >= WARN_SECONDS else "OK"


def words(offset: float) -> str:
    return f"{abs(offset):.3f}s {'ahead of' if offset > 0 else 'behind'}"


Pair = tuple[int, str, str, dict[str, Any]]


def between(hosts: Sequence[tuple[str, str, Measure]]) -> list[Pair]:
    """Each pair of hosts (env, label, measure): (index of the host the finding goes to,
    status, summary, data). It goes to the host further from the operator's clock, the
    likelier one to be wrong."""
    out = []
    for i, (env_a, a, ma) in enumerate(hosts):
        for j in range(i + 1, len(hosts)):
            env_b, b, mb = hosts[j]
            diff = ma.offset - mb.offset
            unc = ma.uncertainty + mb.uncertainty
            status = judge(max(0.0, abs(diff) - unc))
            on, other, d = (i, f"{env_b}/{b}", diff) if abs(ma.offset) >= abs(mb.offset) \
                else (j, f"{env_a}/{a}", -diff)
            out.append((on, status, f"{words(d)} {other} (±{unc:.3f}s)",
                        {"other": other, "difference": round(d, 4),
                         "uncertainty": round(unc, 4)}))
    return out


async def sample(ctx: HostContext) -> tuple[list[Sample], Any]:
    samples, last = [], None
    for _ in range(SAMPLES):
        sent, t0 = time.time(), time.monotonic()
        res = await ctx.run(cc.clock(), timeout=15)
        rtt = time.monotonic() - t0
        host, resolution = parse_date(res.stdout) if res.ok else (None, 0.0)
        samples.append(Sample(sent, rtt, host, resolution))
        last = res
    return samples, last


async def run(ctx: HostContext) -> list[Finding]:
    samples, res = await sample(ctx)
    m = measure(samples)
    sync = await ctx.run(cc.time_sync())
    if m is None:
        return [warn(NAME, "clock", "cannot read the host's clock (`date +%s.%N`)",
                     evidence=[ctx.evidence(res)])]
    when = datetime.fromtimestamp(samples[0].sent, UTC).isoformat(timespec="milliseconds")
    ev = [ctx.evidence(res, f"{res.stdout.strip()}  (this machine at sending: {when}; "
                            f"round trip {m.rtt * 1000:.0f} ms)"), ctx.evidence(sync)]
    daemons = [ln.split()[1] for ln in sync.stdout.splitlines() if ln.startswith("daemon ")]
    data = {"offset": m.offset, "uncertainty": m.uncertainty, "rtt": m.rtt,
            "time_sync": daemons}
    status = judge(m.certain_skew())
    text = f"{words(m.offset)} this machine (±{m.uncertainty:.3f}s)"
    if status == "OK":
        return [ok(NAME, "vs this machine", text, evidence=ev[:1], data=data)]
    kept = f"{', '.join(daemons)} runs but has not mended it" if daemons else \
        "no time sync daemon runs"
    fix = Fix(f"{kept}: turn time sync on (`timedatectl set-ntp true`, or install chrony) on "
              "this host; if every host shows the same offset, this machine's clock is the "
              "one that is off")
    maker = fail if status == "FAIL" else warn
    return [maker(NAME, "vs this machine", f"{text}: TOTP codes, token expiry, TLS and "
                  "signed URLs go wrong, and logs disagree", evidence=ev, fix=fix, data=data)]


def compare(reports: Sequence[Any]) -> None:
    """Adds to each host report (runner.HostReport) how its clock compares with the other
    hosts', from the `clock` findings already in them."""
    measured = []
    for r in reports:
        f = next((x for x in r.findings if x.check == NAME and "offset" in x.data), None)
        if f is not None:
            measured.append((r, Measure(f.data["offset"], f.data["uncertainty"],
                                        f.data["rtt"])))
    pairs = between([(r.env, r.host, m) for r, m in measured])
    for on, status, summary, data in pairs:
        r = measured[on][0]
        maker = {"OK": ok, "WARN": warn, "FAIL": fail}[status]
        ev = [Evidence("clock vs this machine, as measured on each host", "\n".join(
            f"{x.env}/{x.host}: {words(m.offset)} this machine (±{m.uncertainty:.3f}s)"
            for x, m in measured))]
        finding = maker(NAME, "vs other hosts", summary, data=data, evidence=ev,
                        fix=None if status == "OK"
                        else Fix("turn time sync on for every host (`timedatectl set-ntp "
                                 "true`, or chrony), pointed at the same servers"))
        finding.env, finding.host = r.env, r.host
        r.findings.append(finding)
