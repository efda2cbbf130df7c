"""What an environment takes: tags (`allowed_tags`, met by `release --tag` without a
registry) and sources (`accepts_from`: only images the source's history shows released there
and healthy, for at least `soak`). Pure: the history is read by the caller."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from ..config import Config
from ..errors import BadInput
from ..record import History, Record

# Docker's rule for a tag.
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class Released(Protocol):
    """What the policy needs of a service being released (release.Source)."""

    service: str

    @property
    def ref(self) -> str: ...


def check_tag(tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise BadInput(f"--tag {tag!r} is not a Docker tag: letters, digits, _ . -, "
                       "not starting with . or -, at most 128")
    return tag


def repository(ref: str) -> str:
    """`registry:5000/app:main-1a2b` -> `registry:5000/app` (a digest is dropped too)."""
    name = ref.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def tagged_ref(service: str, ref: str, tag: str) -> str:
    """The ref `--tag` gives the image of `service` on TO: its repository, the new tag."""
    if ref.startswith("sha256:"):
        raise BadInput(f"--tag: {service} runs an image by id ({ref[:19]}...), with no "
                       "repository name to put the tag on",
                       hint=f"start {service} from a named image on the source")
    return f"{repository(ref)}:{tag}"


def refs_for_tag(sources: Mapping[str, Released], ids: Mapping[str, str],
                 tag: str) -> dict[str, str]:
    """service -> the ref it gets on TO. Two images cannot share one repository:tag."""
    check_tag(tag)
    out = {name: tagged_ref(name, s.ref, tag) for name, s in sources.items()}
    owner: dict[str, str] = {}
    for name, ref in out.items():
        other = owner.setdefault(ref, name)
        if other != name and ids[other] != ids[name]:
            raise BadInput(f"--tag {tag}: {other} and {name} run different images of one "
                           f"repository; both would be {ref}",
                           hint="release them one at a time with --service")
    return out


def check_tags(cfg: Config, dst_env: str, tags: Mapping[str, str]) -> None:
    """tags: service -> the tag its image has on TO."""
    policy = cfg.environments[dst_env].policy
    bad = [f"{s}: {t or '(an image id)'}" for s, t in tags.items() if not policy.allows(t)]
    if bad:
        raise BadInput(f"{dst_env} takes only tags matching {', '.join(policy.allowed_tags)}; "
                       f"refused: {'; '.join(bad)}", hint="give the release a tag that "
                       "matches: ferryman release ... --tag v1.2.3")


def healthy_release(history: History, env: str, image_id: str) -> Record | None:
    """The newest successful release to `env` that switched to `image_id` and was neither
    rolled back nor failed its watch."""
    undone = {r.rolls_back for r in history.records if r.kind == "rollback"
              and r.result == "ok"}
    for r in reversed(history.records):
        if (r.kind == "release" and r.to == env and r.result == "ok" and r.id not in undone
                and (r.watch or {}).get("result") != "failed"
                and any(s.new is not None and s.new.id == image_id and s.mode != "unchanged"
                        for s in r.services)):
            return r
    return None


def check_accepts(cfg: Config, src_env: str, dst_env: str, images: Mapping[str, tuple[str, str]],
                  history: History, now: datetime) -> None:
    """images: service -> (ref, id) running on FROM. Refuses, naming each image missing from
    FROM's history (or released there too recently)."""
    policy = cfg.environments[dst_env].policy
    if policy.accepts_from is None:
        return
    if src_env not in policy.accepts_from:
        raise BadInput(f"{dst_env} takes releases only from {', '.join(policy.accepts_from)}"
                       f", not from {src_env}",
                       hint=f"release to {policy.accepts_from[0]} first, then from there")
    missing = []
    for service, (ref, iid) in images.items():
        short = iid.split(":")[-1][:12]
        found = healthy_release(history, src_env, iid)
        if found is None:
            missing.append(f"{service}: {ref} ({short}) has no successful release to "
                           f"{src_env} in its history")
            continue
        if policy.soak:
            age = (now - datetime.fromisoformat(found.when)).total_seconds()
            if age < policy.soak:
                missing.append(f"{service}: {ref} ({short}) was released to {src_env} by "
                               f"{found.id} {_span(age)} ago, less than soak {_span(policy.soak)}")
    if missing:
        raise BadInput(f"{dst_env} takes only images released and healthy on {src_env}"
                       f"; refused: {'; '.join(missing)}",
                       hint=f"ferryman history {src_env}; release to {src_env} first")


def _span(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
