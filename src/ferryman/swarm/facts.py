"""What a manager says about nodes, services and tasks, parsed (pure: fed captured JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .commands import IMAGE_LABEL

NS = 1e9  # Swarm keeps durations in nanoseconds
DONE = {"completed"}
ROLLED_BACK = {"rollback_completed"}
STOPPED = {"paused", "rollback_paused"}  # needs an operator: a failed release too
FINAL = DONE | ROLLED_BACK | STOPPED


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    role: str  # manager, worker
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    addr: str
    labels: dict[str, str] = field(default_factory=dict)
    engine_labels: dict[str, str] = field(default_factory=dict)
    os: str = ""
    arch: str = ""

    @property
    def up(self) -> bool:
        return self.state == "ready"

    def attribute(self, key: str) -> str | None:
        """A constraint's left side on this node; None for one ferryman cannot read."""
        fixed = {"node.id": self.id, "node.hostname": self.hostname, "node.role": self.role,
                 "node.platform.os": self.os, "node.platform.arch": self.arch}
        if key in fixed:
            return fixed[key]
        if key.startswith("node.labels."):
            return self.labels.get(key.removeprefix("node.labels."), "")
        if key.startswith("engine.labels."):
            return self.engine_labels.get(key.removeprefix("engine.labels."), "")
        return None


def json_list(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text or "[]")
    except ValueError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def parse_nodes(text: str) -> list[Node]:
    """`docker node inspect` output."""
    out = []
    for n in json_list(text):
        spec, desc, status = n.get("Spec") or {}, n.get("Description") or {}, n.get("Status") or {}
        platform = desc.get("Platform") or {}
        out.append(Node(n.get("ID", ""), desc.get("Hostname", ""), spec.get("Role", ""),
                        status.get("State", ""), spec.get("Availability", ""),
                        status.get("Addr", ""), dict(spec.get("Labels") or {}),
                        dict((desc.get("Engine") or {}).get("Labels") or {}),
                        platform.get("OS", ""), platform.get("Architecture", "")))
    return out


@dataclass
class Health:
    """The service's own healthcheck (what Swarm gates tasks on), in seconds."""

    interval: float = 30.0
    retries: int = 3
    start_period: float = 0.0

    @property
    def window(self) -> float:
        return self.start_period + self.interval * self.retries


@dataclass
class Service:
    id: str
    name: str
    image: str  # Spec image, as the operator gave it (no digest: --no-resolve-image)
    previous_image: str | None
    constraints: list[str]
    replicas: int | None  # None: global
    host_ports: list[int]  # published with mode=host: one task per node can bind them
    health: Health | None
    update_state: str | None
    update_started: str | None
    update_message: str
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def own_constraints(self) -> list[str]:
        """The constraints ferryman added for an image (replaced at each release)."""
        return [c for c in self.constraints if c.replace(" ", "").startswith(
            f"node.labels.{IMAGE_LABEL}")]

    @property
    def placement(self) -> list[str]:
        """The operator's own constraints, which say where the service may run."""
        return [c for c in self.constraints if c not in self.own_constraints]


def _image(spec: dict[str, Any]) -> str:
    ref = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
    return ref.split("@")[0] if "@sha256:" in ref else ref


def parse_services(text: str) -> dict[str, Service]:
    """`docker service inspect` output, by service name."""
    out = {}
    for s in json_list(text):
        spec = s.get("Spec") or {}
        task = spec.get("TaskTemplate") or {}
        prev = s.get("PreviousSpec")
        mode = spec.get("Mode") or {}
        replicas = (mode.get("Replicated") or {}).get("Replicas") if "Replicated" in mode else None
        ports = ((spec.get("EndpointSpec") or {}).get("Ports")) or []
        hc = (task.get("ContainerSpec") or {}).get("Healthcheck")
        health = None
        if hc and (hc.get("Test") or [""])[0] != "NONE":
            health = Health(hc.get("Interval", 30 * NS) / NS, int(hc.get("Retries", 3)),
                            hc.get("StartPeriod", 0) / NS)
        us = s.get("UpdateStatus") or {}
        name = spec.get("Name", "")
        out[name] = Service(
            s.get("ID", ""), name, _image(spec), _image(prev) if prev else None,
            list((task.get("Placement") or {}).get("Constraints") or []),
            int(replicas) if replicas is not None else None,
            [int(p["PublishedPort"]) for p in ports
             if p.get("PublishMode") == "host" and p.get("PublishedPort")],
            health, us.get("State"), us.get("StartedAt"), us.get("Message", ""), s)
    return out


def _split(constraint: str) -> tuple[str, str, str] | None:
    for op in ("==", "!="):
        if op in constraint:
            key, value = constraint.split(op, 1)
            return key.strip(), op, value.strip()
    return None


def matches(node: Node, constraints: list[str]) -> bool:
    """Whether a node satisfies every constraint; one ferryman cannot read counts as met,
    so the image goes to a node too many rather than one too few."""
    for c in constraints:
        parts = _split(c)
        if parts is None:
            continue
        key, op, value = parts
        got = node.attribute(key)
        if got is None:
            continue
        if (got == value) != (op == "=="):
            return False
    return True


@dataclass
class Task:
    id: str
    name: str
    image: str
    node: str  # hostname
    desired: str  # running, shutdown
    current: str  # "Running 2 minutes ago", "Rejected 3 seconds ago"
    error: str

    @property
    def state(self) -> str:
        return (self.current.split() or [""])[0].lower()


def parse_tasks(text: str) -> list[Task]:
    """`docker service ps --format '{{json .}}'` output, one JSON object a line."""
    out = []
    for line in (text or "").splitlines():
        try:
            t = json.loads(line)
        except ValueError:
            continue
        image = t.get("Image", "")
        out.append(Task(t.get("ID", ""), t.get("Name", ""),
                        image.split("@")[0] if "@sha256:" in image else image,
                        t.get("Node", ""), t.get("DesiredState", "").lower(),
                        t.get("CurrentState", ""), t.get("Error", "")))
    return out


def update_order(svc: Service, active: int) -> tuple[str, str, str]:
    """(update order, rollback order, why). start-first where the new task can start beside
    the old one. A host-mode port is bound once per node: the new task must find a node where
    it is free, and one spare node is not enough, since a node drained or lost mid-update
    takes it away and the update then waits forever on a task no node can take; a rollback
    with host-mode ports always stops first, so it can never wait like that."""
    if not svc.host_ports:
        return "start-first", "start-first", "the new task starts before the old one stops"
    if svc.replicas is not None and svc.replicas <= active - 2:
        return "start-first", "stop-first", (
            f"host-mode ports {svc.host_ports}: the new task starts on a node where the port "
            f"is free ({active} active nodes for {svc.replicas} replica(s)), then the old "
            "one stops")
    return "stop-first", "stop-first", (
        f"host-mode ports {svc.host_ports} with {active} active node(s) for "
        f"{svc.replicas if svc.replicas is not None else 'a global service'}: fewer than two "
        "spare nodes, so each task stops before its replacement starts")


def monitor(svc: Service, gate_window: float | None) -> float:
    """How long Swarm watches each new task: at least the time a task may take to turn
    healthy (the service's own healthcheck, and ferryman's gate) and never under 5s."""
    windows = [5.0]
    if svc.health is not None:
        windows.append(svc.health.window)
    if gate_window is not None:
        windows.append(gate_window)
    return max(windows)
