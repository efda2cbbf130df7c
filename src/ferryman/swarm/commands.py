"""argv builders for the Swarm side of the docker CLI (run on a manager, or on each node)."""

from __future__ import annotations

from collections.abc import Sequence

# A node holding an image carries this label; a service released by ferryman is constrained
# to it, so a node lacking the image is never given a task of it ("No such image").
IMAGE_LABEL = "ferryman.image."


def image_label(image_id: str) -> str:
    return IMAGE_LABEL + image_id.split(":")[-1][:12]


def image_constraint(image_id: str) -> str:
    return f"node.labels.{image_label(image_id)}==true"


def node_ids() -> list[str]:
    return ["docker", "node", "ls", "--quiet"]


def inspect_nodes(ids: Sequence[str]) -> list[str]:
    return ["docker", "node", "inspect", *ids]


def inspect_services(names: Sequence[str]) -> list[str]:
    return ["docker", "service", "inspect", *names]


def service_tasks(name: str) -> list[str]:
    return ["docker", "service", "ps", "--no-trunc", "--format", "{{json .}}", name]


def label_nodes(label: str, node_ids: Sequence[str], add: bool) -> list[list[str]]:
    flag = ["--label-add", f"{label}=true"] if add else ["--label-rm", label]
    return [["docker", "node", "update", *flag, node] for node in node_ids]


def update_service(name: str, ref: str, *, order: str, rollback_order: str, monitor: float,
                   constraints_rm: Sequence[str] = (), constraint_add: str | None = None,
                   parallelism: int = 1) -> list[str]:
    """The image change, pinned (no registry to resolve a digest from), with the update
    policy of ferryman's health gate; `--detach` since the outcome is read from UpdateStatus,
    not from the CLI (which exits 0 after Swarm rolled the update back)."""
    argv = ["docker", "service", "update", "--detach", "--image", ref, "--no-resolve-image",
            "--update-order", order, "--update-parallelism", str(parallelism),
            "--update-monitor", f"{monitor:g}s", "--update-failure-action", "rollback",
            "--update-max-failure-ratio", "0", "--rollback-order", rollback_order]
    for c in constraints_rm:
        argv += ["--constraint-rm", c]
    if constraint_add:
        argv += ["--constraint-add", constraint_add]
    return [*argv, name]


def rollback_service(name: str) -> list[str]:
    """Back to the spec before the last update (image, constraints and policy alike)."""
    return ["docker", "service", "rollback", "--detach", name]
