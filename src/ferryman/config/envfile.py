"""`.env` files and `${VAR}` substitution in configuration strings."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# `$${` is an escape, `${...}` a reference; a lone `${` without `}` is unterminated.
_TOKEN = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


class EnvFileError(ValueError):
    """A line of a `.env` file that is not `KEY=VALUE`."""

    # The offending text is deliberately not kept: it may hold a secret.
    def __init__(self, line: int, expected: str) -> None:
        super().__init__(f"line {line}: {expected}")
        self.line = line
        self.expected = expected


def parse_env_text(text: str) -> tuple[dict[str, str], list[EnvFileError]]:
    """Parse `.env` content: KEY=VALUE lines, optional `export `, `#` comments, quotes stripped.

    Bad lines are returned as errors rather than raised so every one can be reported.
    """
    values: dict[str, str] = {}
    errors: list[EnvFileError] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _ENV_KEY.fullmatch(key):
            errors.append(EnvFileError(number, "KEY=VALUE, KEY made of letters, digits, _"))
            continue
        value = value.strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            rest = value[end + 1 :].strip() if end > 0 else ""
            if end < 0:
                errors.append(EnvFileError(number, f"a closing {quote} quote"))
                continue
            if rest and not rest.startswith("#"):
                errors.append(EnvFileError(number, "only a # comment after the closing quote"))
                continue
            value = value[1:end]
        else:
            # An unquoted value ends at a ` #` comment, as in shells and docker compose.
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        values[key] = value
    return values, errors


def read_env_file(path: Path) -> tuple[dict[str, str], list[EnvFileError]]:
    """Read a `.env` file; a missing file is simply empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    return parse_env_text(text)


@dataclass
class Substitution:
    """Result of substituting one string."""

    text: str
    secrets: set[str] = field(default_factory=set)  # values that came from variables
    undefined: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


def substitute(text: str, lookup: Callable[[str], str | None]) -> Substitution:
    """Replace `${VAR}` and `${VAR:-default}`; `$${` yields a literal `${`.

    `lookup` returns None for an undefined variable. Defaults are not secrets: they are
    written in the file for everyone to read. Like the shell, `:-` also applies when the
    variable is set but empty.
    """
    result = Substitution(text="")

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        body = match.group("body")
        parsed = _BODY.fullmatch(body) if body is not None else None
        if parsed is None:
            result.malformed.append(whole)
            return whole
        name, default = parsed.group("name"), parsed.group("default")
        value = lookup(name)
        if default is not None and not value:
            return default
        if value is None:
            result.undefined.append(name)
            return whole
        if value:
            result.secrets.add(value)
        return value

    result.text = _TOKEN.sub(replace, text)
    return result
