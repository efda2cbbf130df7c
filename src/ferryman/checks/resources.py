"""resources: memory. Per container, what it uses against its limit and the host's memory
(`docker stats --no-stream`), whether it was killed for lack of memory (`State.OOMKilled`,
and the kernel's own OOM lines, which name the container's cgroup), and restart loops with
what their exit codes mean. Per host: swap off with little memory available, where the OOM
killer strikes instead of the host slowing down."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..docker.inspect import ContainerFacts
from ..units import human_bytes
from . import commands as cc
from .containers import LOOP_RESTARTS, LOOP_WINDOW, age_seconds
from .context import HostContext
from .findings import Finding, Fix, fail, ok, warn

NAME = "resources"
NEAR_LIMIT = 90  # percent of its limit
LOW_AVAILABLE = 10  # percent of the host's memory
LOW_AVAILABLE_BYTES = 256 << 20

UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
         "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}

EXIT_CODES = {
    0: "exited normally",
    1: "the application failed (its own error)",
    2: "misuse of a shell command or bad arguments",
    125: "docker could not run the container",
    126: "the command cannot be executed (permissions, not a binary)",
    127: "the command was not found in the image",
    134: "SIGABRT: the process aborted (assertion, abort())",
    137: "SIGKILL: killed by the OOM killer or by `docker kill`/a stop timeout",
    139: "SIGSEGV: the process crashed (segmentation fault)",
    143: "SIGTERM: asked to stop",
}


def exit_meaning(code: int) -> str:
    if code in EXIT_CODES:
        return EXIT_CODES[code]
    if code > 128:
        return f"killed by signal {code - 128}"
    return "the application's own exit code"


def parse_size(text: str) -> int | None:
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?i?B)\s*", text, re.IGNORECASE)
    if not m:
        return None
    return int(float(m.group(1)) * UNITS[m.group(2).lower()])


@dataclass
class Stats:
    name: str
    id: str
    used: int | None
    ceiling: int | None  # the limit, or the host's memory when there is none
    percent: float | None
    cpu: str


def parse_stats(stdout: str) -> dict[str, Stats]:
    """From `docker stats --no-stream` with cc.container_stats()'s format."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 5:
            continue
        name, cid, usage, perc, cpu = (p.strip() for p in parts[:5])
        used, _, ceiling = usage.partition("/")
        try:
            percent = float(perc.rstrip("%"))
        except ValueError:
            percent = None
        out[name] = Stats(name, cid, parse_size(used), parse_size(ceiling), percent, cpu)
    return out


def parse_meminfo(stdout: str) -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in stdout.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            out[key.strip()] = int(fields[0]) * (1024 if fields[1:2] == ["kB"] else 1)
    return out


@dataclass
class OomEvent:
    line: str  # the kernel's lines, whole
    task: str = ""
    pid: str = ""
    ids: list[str] = field(default_factory=list)
    brief: str = ""  # the same, cut to what tells the kill apart (for the evidence)


def parse_oom(stdout: str) -> tuple[str | None, list[OomEvent]]:
    """(where the kernel log came from, or None when unreadable; the OOM kills). An
    `oom-kill:` line names the cgroups (hence the container id); the `Killed process` line
    after it says which process died."""
    lines = stdout.splitlines()
    if not lines or lines[0].strip() == "unreadable":
        return None, []
    source = lines[0].split(" ", 1)[1].strip() if lines[0].startswith("source ") else "?"
    events: list[OomEvent] = []
    for line in lines[1:]:
        when = line.split("]", 1)[0] + "]" if line.startswith("[") else ""
        if "oom-kill:" in line:
            fields = dict(kv.split("=", 1) for kv in line.split("oom-kill:", 1)[1].split(",")
                          if "=" in kv)
            brief = (f"{when} oom-kill: task={fields.get('task', '?')} pid="
                     f"{fields.get('pid', '?')} memcg={fields.get('oom_memcg', '?')}").strip()
            events.append(OomEvent(line.strip(), fields.get("task", ""), fields.get("pid", ""),
                                   sorted(set(re.findall(r"[0-9a-f]{64}", line))), brief))
        elif m := re.search(r"Killed process (\d+) \(([^)]*)\)", line):
            said = re.sub(r"(anon-rss:\w+).*", r"\1", line.strip())
            match = next((e for e in reversed(events) if e.pid == m.group(1)), None)
            if match is None:
                events.append(OomEvent(line.strip(), m.group(2), m.group(1), brief=said))
            else:
                match.line += "\n" + line.strip()
                match.brief += "\n" + said
    return source, events


def host_memory(info: dict[str, int]) -> tuple[str, str, dict[str, Any]]:
    """(status, summary, data) of the host's memory and swap."""
    total, avail = info.get("MemTotal"), info.get("MemAvailable", info.get("MemFree"))
    swap = info.get("SwapTotal", 0)
    data = {"total": total, "available": avail, "swap_total": swap,
            "swap_free": info.get("SwapFree", 0)}
    if not total or avail is None:
        return "WARN", "cannot read the host's memory", data
    pct = avail * 100 // total
    text = f"{human_bytes(avail)} available of {human_bytes(total)} ({pct}%)"
    swap_text = ("swap off" if not swap else
                 f"swap {human_bytes(info.get('SwapFree', 0))} free of {human_bytes(swap)}")
    low = pct < LOW_AVAILABLE or avail < LOW_AVAILABLE_BYTES
    if low and not swap:
        return "WARN", (f"{text}, {swap_text}: the next peak goes to the OOM killer, which "
                        "kills a container (often the database) instead of slowing down"), data
    if low:
        return "WARN", f"{text}, {swap_text}: memory is short; the host swaps", data
    return "OK", f"{text}, {swap_text}", data


def verdict(f: ContainerFacts, st: Stats | None, kills: list[OomEvent],
            host_total: int | None) -> tuple[str, str, str]:
    """(status, summary, kind) of one container's memory and restarts."""
    limit = int((f.raw.get("HostConfig") or {}).get("Memory") or 0)
    used = st.used if st else None
    if used is not None and limit:
        mem = f"{human_bytes(used)} of its {human_bytes(limit)} limit"
        pct = used * 100 / limit
    elif used is not None:
        mem = f"{human_bytes(used)}, no limit (host: {human_bytes(host_total)})"
        pct = used * 100 / host_total if host_total else 0
    else:
        mem = f"limit {human_bytes(limit)}" if limit else "no limit"
        pct = 0
    started = age_seconds(f.started_at)
    looping = f.status == "restarting" or (
        f.restarts >= LOOP_RESTARTS and started is not None and started < LOOP_WINDOW)
    why = f"exit code {f.exit_code}: {exit_meaning(f.exit_code)}"
    if f.oom_killed or kills:
        seen = "State.OOMKilled" if f.oom_killed else "the kernel log"
        state = ("restarting in a loop" if looping else
                 "running again" if f.running else f"{f.status}")
        return "FAIL", (f"killed for lack of memory ({seen}; {len(kills)} OOM kill(s) in "
                        f"the kernel log), {state}, {why}; {mem}"), "oom"
    if looping:
        return "FAIL", (f"restarting in a loop: {f.restarts} restarts, last {why}; {mem}"), \
            "restart-loop"
    if limit and pct >= NEAR_LIMIT:
        return "WARN", f"{mem} ({pct:.0f}%): near its limit, the OOM killer is next", "near"
    if f.restarts:
        return "WARN", f"restarted {f.restarts} times, last {why}; {mem}", "restarted"
    return "OK", mem, "ok"


def _fix(kind: str, f: ContainerFacts) -> Fix | None:
    limit = int((f.raw.get("HostConfig") or {}).get("Memory") or 0)
    if kind in ("oom", "near"):
        more = f"{2 * limit >> 20}m" if limit else "..."
        return Fix(f"give it more memory (`docker update --memory {more} --memory-swap {more} "
                   f"{f.name}`; a release carries the container's limit) or find what grows "
                   "(a cache, a leak, a batch job)")
    if kind == "restart-loop":
        return Fix(f"the exit code says why; read `docker logs --tail 50 {f.name}`, and stop "
                   f"the loop while you mend it: `docker update --restart no {f.name}`")
    return None


async def run(ctx: HostContext) -> list[Finding]:
    mem = await ctx.run(cc.meminfo())
    info = parse_meminfo(mem.stdout)
    level, text, data = host_memory(info)
    maker = {"OK": ok, "WARN": warn, "FAIL": fail}[level]
    out = [maker(NAME, "host memory", text, evidence=[ctx.evidence(mem, "\n".join(
        ln for ln in mem.stdout.splitlines() if ln.split(":")[0] in
        ("MemTotal", "MemAvailable", "MemFree", "SwapTotal", "SwapFree")))], data=data,
        fix=None if level == "OK" else Fix(
            "add memory or a swap file (`fallocate -l 2G /swapfile && mkswap /swapfile && "
            "swapon /swapfile`), or set limits so one container cannot starve the rest"))]
    inspected, facts = await ctx.all_containers()
    if inspected is None:
        return out
    stats_res = await ctx.run(cc.container_stats(), timeout=60)
    stats = parse_stats(stats_res.stdout)
    oom_res = await ctx.run(cc.kernel_oom(), timeout=30)
    source, events = parse_oom(oom_res.stdout)
    services = {p.container: p.service for p in ctx.placements}
    for name, f in sorted(facts.items()):
        kills = [e for e in events if f.id in e.ids]
        level, text, kind = verdict(f, stats.get(name), kills, info.get("MemTotal"))
        st = stats.get(name)
        fdata = {"container": name, "service": services.get(name), "kind": kind,
                 "used": st.used if st else None,
                 "limit": int((f.raw.get("HostConfig") or {}).get("Memory") or 0),
                 "oom_killed": f.oom_killed, "kernel_oom_kills": len(kills),
                 "restarts": f.restarts, "exit_code": f.exit_code}
        if level == "OK" and name not in services:
            continue
        if level == "OK":
            out.append(ok(NAME, name, text, data=fdata))
            continue
        ev = [ctx.evidence(inspected, f"{name}: Status={f.status} OOMKilled="
                                      f"{str(f.oom_killed).lower()} ExitCode={f.exit_code} "
                                      f"RestartCount={f.restarts} HostConfig.Memory="
                                      f"{fdata['limit']}")]
        if st is not None:
            ev.append(ctx.evidence(stats_res, "\n".join(
                ln for ln in stats_res.stdout.splitlines() if ln.startswith(name + "\t"))))
        if kills:
            ev.append(ctx.evidence(oom_res, "\n".join(e.brief for e in kills[-2:])))
        maker = fail if level == "FAIL" else warn
        out.append(maker(NAME, name, text, evidence=ev, fix=_fix(kind, f), data=fdata))
    others = [e for e in events if not any(f.id in e.ids for f in facts.values())]
    if source is None:
        out.append(ok(NAME, "kernel log", "cannot read the kernel log (dmesg, journalctl -k): "
                      "OOM kills seen by State.OOMKilled only",
                      evidence=[ctx.evidence(oom_res)]))
    elif others:
        out.append(warn(NAME, "kernel log", f"{len(others)} OOM kill(s) of processes outside "
                        "this host's containers (the host's own services, or other "
                        "containers' cgroups)", evidence=[ctx.evidence(oom_res, "\n".join(
                            e.brief for e in others[-3:]))],
                        data={"kills": [{"task": e.task, "pid": e.pid} for e in others]}))
    return out
