"""Config guards, pure part: does a JSON config on a host name its own environment?

Source note 000: TEST's base_url pointed at PROD, and TEST read PROD's data. A value passes
when it names the environment's own address or the host itself (localhost, 127.0.0.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import FlowFailed

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


class GuardError(FlowFailed):
    """A guarded file is not what its guard expects (not JSON, key missing, not a string)."""


@dataclass
class Verdict:
    ok: bool
    value: Any
    expected: str
    fixed_text: str | None = None  # the whole file rewritten, when not ok
    fixed_value: str | None = None


def host_of(value: str) -> str:
    """The host a URL, `host:port` or bare host names, lowercased ("" when none)."""
    parts = urlsplit(value if "://" in value else f"//{value}")
    return (parts.hostname or "").lower()


def names_self(value: str, own: str) -> bool:
    return host_of(value) in LOCAL_NAMES | {own.lower()}


def rewrite(value: str, own: str) -> str:
    """The same URL with its host replaced by the environment's own address."""
    if "://" not in value:
        return own
    parts = urlsplit(value)
    netloc = own if ":" not in own else f"[{own}]"
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        cred = parts.username + (f":{parts.password}" if parts.password else "")
        netloc = f"{cred}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_json(text: str, key_path: list[str], own: str) -> Verdict:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise GuardError(f"not valid JSON: {exc}") from exc
    node: Any = doc
    for key in key_path[:-1]:
        if not isinstance(node, dict) or key not in node:
            raise GuardError(f"key {'.'.join(key_path)} not found")
        node = node[key]
    last = key_path[-1]
    if not isinstance(node, dict) or last not in node:
        raise GuardError(f"key {'.'.join(key_path)} not found")
    value = node[last]
    expected = f"{own} or localhost"
    if not isinstance(value, str):
        raise GuardError(f"key {'.'.join(key_path)} is {type(value).__name__}, not a string")
    if names_self(value, own):
        return Verdict(True, value, expected)
    fixed = rewrite(value, own)
    node[last] = fixed
    indent = 2 if "\n" in text.strip() else None
    new_text = json.dumps(doc, indent=indent, ensure_ascii=False) + ("\n" if indent else "")
    return Verdict(False, value, expected, new_text, fixed)
