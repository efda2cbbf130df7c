"""`nft list ruleset` text: tables, their base chains (hook, policy) and rules.

Source note 000: a table left behind by firewalld keeps filtering the forward hook after the
service stopped, and containers on one bridge then get "No route to host" from each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FIREWALLD_FAMILIES = ("inet", "ip", "ip6")
# Tables that iptables-nft manages (Docker writes its own rules there): not ours to judge.
IPTABLES_TABLES = {"filter", "nat", "mangle", "raw", "security"}

_TABLE = re.compile(r"^table\s+(\S+)\s+(\S+)\s*\{$")
_CHAIN = re.compile(r"^chain\s+(\S+)\s*\{$")
_HOOK = re.compile(r"\btype\s+\S+\s+hook\s+(\S+)(?:\s+device\s+\S+)?\s+priority\s+([^;]+);")
_POLICY = re.compile(r"\bpolicy\s+(\w+)\s*;")
_QUOTED = re.compile(r'"[^"]*"')


@dataclass
class Chain:
    name: str
    hook: str | None = None
    priority: str | None = None
    policy: str | None = None
    rules: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> bool:
        """Drops or rejects some traffic: by policy or by a rule."""
        return self.policy == "drop" or any(
            re.search(r"\b(reject|drop)\b", r) for r in self.rules)


@dataclass
class Table:
    family: str
    name: str
    chains: list[Chain] = field(default_factory=list)

    @property
    def spec(self) -> str:
        return f"{self.family} {self.name}"

    def hooked(self, hook: str) -> list[Chain]:
        return [c for c in self.chains if c.hook == hook]

    @property
    def iptables_managed(self) -> bool:
        return self.family in ("ip", "ip6", "arp", "bridge") and self.name in IPTABLES_TABLES


def _depth_change(line: str) -> int:
    bare = _QUOTED.sub("", line)
    return bare.count("{") - bare.count("}")


def parse_ruleset(text: str) -> list[Table]:
    tables: list[Table] = []
    table: Table | None = None
    chain: Chain | None = None
    depth = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if depth == 0 and (m := _TABLE.match(line)):
            table = Table(m.group(1), m.group(2))
            tables.append(table)
        elif depth == 1 and table is not None and (m := _CHAIN.match(line)):
            chain = Chain(m.group(1))
            table.chains.append(chain)
        elif depth == 2 and chain is not None:
            if (m := _HOOK.search(line)):
                chain.hook, chain.priority = m.group(1), m.group(2).strip()
                if (p := _POLICY.search(line)):
                    chain.policy = p.group(1)
            elif line != "}":
                chain.rules.append(line)
        depth = max(depth + _depth_change(line), 0)
        if depth <= 1:
            chain = None
        if depth == 0:
            table = None
    return tables


def firewalld_tables(tables: list[Table]) -> list[Table]:
    return [t for t in tables if t.name == "firewalld" and t.family in FIREWALLD_FAMILIES]


def residual_forward(tables: list[Table]) -> list[Table]:
    """firewalld's tables whose forward chains drop or reject something."""
    return [t for t in firewalld_tables(tables) if any(c.blocks for c in t.hooked("forward"))]


def other_blocking(tables: list[Table], hook: str) -> list[tuple[Table, Chain]]:
    """Chains on `hook` that drop by default, outside firewalld's and iptables' tables."""
    return [(t, c) for t in tables if t.name != "firewalld" and not t.iptables_managed
            for c in t.hooked(hook) if c.policy == "drop"]


def describe(table: Table, hook: str = "forward") -> str:
    """One line per hooked chain: `chain filter_FORWARD (hook forward, policy accept):
    reject with icmpx host-unreachable`."""
    out = []
    for c in table.hooked(hook):
        blocking = [r for r in c.rules if re.search(r"\b(reject|drop)\b", r)]
        shown = "; ".join(blocking[:3]) or "no drop/reject rule"
        out.append(f"chain {c.name} (hook {c.hook}, policy {c.policy or '?'}): {shown}")
    return "\n".join(out)


def table_text(text: str, table: Table) -> str:
    """The lines of one table in the ruleset, for evidence."""
    lines = text.splitlines()
    head = f"table {table.family} {table.name} {{"
    out: list[str] = []
    depth = 0
    for line in lines:
        if not out and line.strip() != head:
            continue
        out.append(line)
        depth += _depth_change(line)
        if depth <= 0:
            break
    return "\n".join(out)
