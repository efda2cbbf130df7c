"""Read `ferryman.yml`, substitute variables, validate, and pin every problem to a line."""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from .envfile import read_env_file, substitute
from .errors import ConfigError, ConfigIssue
from .schema import ISSUE_TYPE, KEY, MASK, Config, Loc, cross_check, mask

ENV_FILE = ".env"
EXTENSION_PREFIX = "x-"
_NO_VALUE = object()  # an issue with no "got ..." part
_MASKED = object()  # a value that must not be shown at all (a password)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate a configuration file; raise ConfigError listing every problem."""
    name = os.fspath(path)
    loader = _Loader(name, Path(path), os.environ if environ is None else environ)
    return loader.load()


class _Loader:
    def __init__(self, name: str, path: Path, environ: Mapping[str, str]) -> None:
        self.name = name
        self.path = path
        self.environ = environ
        self.env_path = path.parent / ENV_FILE
        self.env_values: dict[str, str] | None = None  # read on first need
        self.issues: list[ConfigIssue] = []
        self.secrets: set[str] = set()
        self.broken: list[Loc] = []  # values whose substitution failed
        self.root: CommentedMap | None = None

    # -- steps -----------------------------------------------------------------------

    def load(self) -> Config:
        text = self._read()
        root = self._parse(text) if text is not None else None
        if root is None:
            raise ConfigError(self.issues)
        self.root = root
        # Top-level x-... keys only hold YAML anchors for reuse, as in docker compose.
        data = {
            _plain_key(k): self._plain(v, (_plain_key(k),))
            for k, v in root.items()
            if not (isinstance(k, str) and k.startswith(EXTENSION_PREFIX))
        }
        self.secrets |= _secret_inputs(data, Config)
        config = self._validate(data)
        for problem in cross_check(data):
            if not self._is_broken(problem.loc):
                # Names listed in `expected` come from the file and may be substituted secrets.
                self._add(problem.loc, problem.value, mask(problem.expected, self.secrets))
        if self.issues or config is None:
            raise ConfigError(self._sorted_issues())
        config._source = self.name
        config._secrets = {s for s in self.secrets if s}
        return config

    def _read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._file_issue("an existing file (no such file)")
        except IsADirectoryError:
            self._file_issue("a file, not a directory")
        except PermissionError:
            self._file_issue("a readable file (permission denied)")
        except UnicodeDecodeError as exc:
            line = exc.object[: exc.start].count(b"\n") + 1
            self._file_issue("UTF-8 text (this line has a byte that is not UTF-8)", line)
        except OSError as exc:
            self._file_issue(f"a readable file ({exc.strerror or exc})")
        return None

    def _parse(self, text: str) -> CommentedMap | None:
        try:
            root = YAML(typ="rt").load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid syntax"
            if exc.context and exc.problem:
                problem = f"{problem}, {exc.context}"
            line = mark.line + 1 if mark is not None else None
            self.issues.append(ConfigIssue(self.name, line, "", None, f"valid YAML: {problem}"))
            return None
        except ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            char = exc.character
            shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
            reason = f"unacceptable character {shown}: {exc.reason}"
            self.issues.append(ConfigIssue(self.name, line, "", None, f"valid YAML: {reason}"))
            return None
        except YAMLError as exc:
            self._file_issue(f"valid YAML: {str(exc).splitlines()[0]}")
            return None
        if root is None:
            self._file_issue(
                "a YAML mapping with at least project and environments (file is empty)"
            )
            return None
        if not isinstance(root, CommentedMap):
            line = root.lc.line + 1 if isinstance(root, CommentedSeq) else 1
            self.issues.append(
                ConfigIssue(
                    self.name,
                    line,
                    "",
                    f"a {_kind(root)}",
                    "a mapping of keys (project, environments, ...) at the top level",
                )
            )
            return None
        return root

    def _plain(self, node: Any, loc: Loc) -> Any:
        """Copy the ruamel tree into plain Python data, substituting variables on the way."""
        if isinstance(node, CommentedMap):
            return {_plain_key(k): self._plain(v, (*loc, _plain_key(k))) for k, v in node.items()}
        if isinstance(node, CommentedSeq):
            return [self._plain(v, (*loc, i)) for i, v in enumerate(node)]
        if isinstance(node, str):
            return self._substitute(str(node), loc)
        if isinstance(node, bool | ScalarBoolean):
            return bool(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, TaggedScalar):
            return self._plain(node.value, loc)
        return node

    def _substitute(self, text: str, loc: Loc) -> str:
        if "${" not in text:
            return text
        result = substitute(text, self._lookup)
        self.secrets |= result.secrets
        for var in result.undefined:
            self.broken.append(loc)
            self._add(
                loc,
                _NO_VALUE,
                f"variable {var} to be set in the environment or in {self.env_path} "
                f"(it is undefined), or a default: ${{{var}:-value}}",
            )
        for bad in result.malformed:
            self.broken.append(loc)
            self._add(
                loc, _NO_VALUE, f"${{NAME}} or ${{NAME:-default}} (found {bad}); write $${{ for ${{"
            )
        return result.text

    def _lookup(self, var: str) -> str | None:
        if var in self.environ:
            return self.environ[var]
        return self._env_file().get(var)

    def _env_file(self) -> dict[str, str]:
        if self.env_values is None:
            try:
                self.env_values, errors = read_env_file(self.env_path)
            except (OSError, UnicodeDecodeError) as exc:
                self.env_values, errors = {}, []
                reason = getattr(exc, "strerror", None) or str(exc)
                self.issues.append(
                    ConfigIssue(str(self.env_path), None, "", None, f"a readable file ({reason})")
                )
            for err in errors:
                # The line itself is never echoed: it may hold a secret.
                self.issues.append(
                    ConfigIssue(str(self.env_path), err.line, "", None, err.expected)
                )
        return self.env_values

    def _validate(self, data: dict[str, Any]) -> Config | None:
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                if not self._is_broken(loc):
                    self._from_pydantic(err, loc)
            return None

    def _is_broken(self, loc: Loc) -> bool:
        """True inside a value whose substitution failed: that problem is reported already."""
        return any(loc[: len(b)] == b for b in self.broken)

    # -- issues ----------------------------------------------------------------------

    def _from_pydantic(self, err: Any, loc: Loc) -> None:
        kind = err["type"]
        if kind == "missing":
            line = self._owner_line(loc[:-1])
            self.issues.append(
                ConfigIssue(
                    self.name,
                    line,
                    _path(loc, self.root),
                    None,
                    "a value (required key is missing)",
                )
            )
            return
        if kind == "extra_forbidden":
            self._add((*loc, KEY), _NO_VALUE, _unknown_key(loc))
            return
        value = _MASKED if _type_at(loc) is SecretStr else err.get("input")
        self._add(loc, value, _expected(err))

    def _add(self, loc: Loc, value: object, expected: str) -> None:
        shown = None if value is _NO_VALUE else _show(value, self.secrets)
        key = _path(loc[:-1] if loc[-1:] == (KEY,) else loc, self.root)
        self.issues.append(ConfigIssue(self.name, self._line(loc), key, shown, expected))

    def _sorted_issues(self) -> list[ConfigIssue]:
        unique = list(dict.fromkeys(self.issues))
        return sorted(unique, key=lambda i: (i.file != self.name, i.line or 0))

    def _file_issue(self, expected: str, line: int | None = None) -> None:
        self.issues.append(ConfigIssue(self.name, line, "", None, expected))

    # -- lines -----------------------------------------------------------------------

    def _line(self, loc: Loc) -> int | None:
        """Line of the value at `loc`; of its key for collections, nulls and KEY locations."""
        node: Any = self.root
        line = self._owner_line(())
        want_key = loc[-1:] == (KEY,)
        steps = loc[:-1] if want_key else loc
        for i, step in enumerate(steps):
            child = _child(node, step)
            last = i == len(steps) - 1
            # A scalar's own line is best; a block collection or a null starts on its key's line.
            use_key = not last or want_key or not _is_scalar(child)
            found = _position(node, step, key=use_key)
            if found is None:
                return line  # deepest known line
            line, node = found, child
        return line

    def _owner_line(self, loc: Loc) -> int | None:
        """Line that introduces the mapping at `loc`: its key, list item, or the file start."""
        if not loc:
            return (self.root.lc.line + 1) if self.root is not None else None
        return self._line((*loc, KEY)) if not isinstance(loc[-1], int) else self._line(loc)


# --- helpers --------------------------------------------------------------------------


def _child(node: Any, step: str | int) -> Any:
    try:
        if isinstance(node, CommentedMap) and step in node:
            return node[step]
        if isinstance(node, CommentedSeq) and isinstance(step, int) and 0 <= step < len(node):
            return node[step]
    except (KeyError, TypeError):
        pass
    return None


def _position(node: Any, step: str | int, *, key: bool) -> int | None:
    """1-based line of a mapping key or value, or of a sequence item."""
    try:
        if isinstance(node, CommentedMap) and step in node:
            return (node.lc.key(step) if key else node.lc.value(step))[0] + 1
        if isinstance(node, CommentedSeq) and isinstance(step, int) and 0 <= step < len(node):
            return node.lc.item(step)[0] + 1
    except (KeyError, TypeError, AttributeError):
        pass  # keys pulled in by a YAML merge (<<) carry no position of their own
    return None


def _is_scalar(node: Any) -> bool:
    return node is not None and not isinstance(node, CommentedMap | CommentedSeq)


def _plain_key(key: Any) -> Any:
    return str(key) if isinstance(key, str) else key


def _kind(value: Any) -> str:
    if isinstance(value, CommentedSeq | list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _show(value: object, secrets: set[str]) -> str:
    """Render a bad value for a message: repr-ish, short, secrets masked."""
    if value is _MASKED:
        return MASK
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(mask(value, secrets))
    elif isinstance(value, Mapping):
        text = "a mapping" if value else "an empty mapping"
    elif isinstance(value, list):
        text = "a list" if value else "an empty list"
    else:
        text = mask(repr(value), secrets)
    return text if len(text) <= 80 else text[:77] + "..."


def _path(loc: Loc, root: Any) -> str:
    """environments.prod.hosts[0].address; keys that would read ambiguously are quoted."""
    out = ""
    node = root
    for step in loc:
        is_index = isinstance(step, int) and not isinstance(node, CommentedMap)
        if is_index:
            out += f"[{step}]"
        elif str(step).replace("_", "").replace("-", "").isalnum():
            out += f".{step}" if out else str(step)
        else:
            out += f"[{str(step)!r}]"
        node = _child(node, step)
    return out


def _expected(err: Any) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == ISSUE_TYPE:
        return err["msg"]
    simple = {
        "string_type": "a string (quote it in YAML)",
        "string_too_short": "a non-empty string",
        "int_type": "a whole number",
        "int_parsing": "a whole number",
        "int_from_float": "a whole number",
        "float_type": "a number",
        "float_parsing": "a number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "list_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
    }
    if kind in simple:
        return simple[kind]
    if kind == "greater_than_equal":
        return f"a number >= {ctx.get('ge')}"
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        return f"at least {count} entr{'y' if count == 1 else 'ies'}"
    if kind == "literal_error":
        return f"{ctx.get('expected')}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _unknown_key(loc: Loc) -> str:
    model = _type_at(loc[:-1])
    allowed = list(model.model_fields) if _is_model(model) else []
    if not allowed:
        return "no such key here"
    hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    maybe = f"; did you mean {hint[0]!r}?" if hint else ""
    return f"one of {', '.join(allowed)} (unknown key{maybe})"


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional so the walk sees the core type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _type_at(loc: Loc, root: Any = Config) -> Any:
    """The schema type expected at a validation location, or None if it cannot be told."""
    tp = root
    for step in loc:
        tp = _unwrap(tp)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if _is_model(tp) and isinstance(step, str) and step in tp.model_fields:
            tp = tp.model_fields[step].annotation
        elif origin is list and isinstance(step, int):
            tp = args[0]
        elif origin is dict:
            tp = args[0] if step == KEY else args[1]
        else:
            return None
    return _unwrap(tp)


def _secret_inputs(data: Any, tp: Any) -> set[str]:
    """Raw strings given for SecretStr fields, so no message can echo them."""
    tp = _unwrap(tp)
    if tp is SecretStr:
        return {data} if isinstance(data, str) and data else set()
    found: set[str] = set()
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_model(tp) and isinstance(data, Mapping):
        for key, value in data.items():
            if key in tp.model_fields:
                found |= _secret_inputs(value, tp.model_fields[key].annotation)
    elif origin is list and isinstance(data, list):
        for item in data:
            found |= _secret_inputs(item, args[0])
    elif origin is dict and isinstance(data, Mapping):
        for item in data.values():
            found |= _secret_inputs(item, args[1])
    return found
