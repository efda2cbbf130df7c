"""Making a compose release durable: the project's own files name the released image, so a
plain `docker compose up -d` in the project directory keeps it.

Where the service's `image:` is parametrised (`shop:${TAG}`, `${APP_IMAGE}`), the variable is
set in the project's `.env`; else the `image:` line is rewritten in place (indent, key and
comment kept). Pure: texts in, the edit out; the caller backs the file up and writes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config.envfile import parse_env_text
from .inspect import ComposeInfo

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_KEY = re.compile(r"""^(\s*)(["']?)([^"'#:]+)\2\s*:(.*)$""")
_SAFE = re.compile(r"[A-Za-z0-9_.:/@+-]+")


@dataclass(frozen=True)
class ImageLine:
    index: int  # 0-based line number
    value: str  # unquoted, comment removed


@dataclass(frozen=True)
class Edit:
    path: str
    old: str | None  # None: the file did not exist
    new: str
    how: str  # one line for the step log

    @property
    def changes(self) -> bool:
        return self.old != self.new


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _scalar(raw: str) -> str:
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        end = raw.find(raw[0], 1)
        return raw[1:end] if end > 0 else raw[1:]
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def image_line(text: str, service: str) -> ImageLine | None:
    """The `image:` line of `service` under the top-level `services:` (block style)."""
    in_services = False
    svc_indent: int | None = None  # the indent of the service keys
    mine = False  # inside `service`'s block
    child: int | None = None  # the indent of its keys
    for i, line in enumerate(text.splitlines()):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        ind = _indent(line)
        m = _KEY.match(line)
        name = m.group(3).strip() if m else ""
        if ind == 0:
            in_services, svc_indent, mine = name == "services", None, False
            continue
        if not in_services:
            continue
        if svc_indent is None:
            svc_indent = ind
        if ind <= svc_indent:
            mine, child = name == service, None
            continue
        if not mine or m is None:
            continue
        child = ind if child is None else child
        if ind == child and name == "image":
            return ImageLine(i, _scalar(m.group(4)))
    return None


def _resolve(value: str, env: dict[str, str], skip: str) -> str | None:
    """`value` with every variable but `skip` substituted from env (or its default);
    None when one cannot be resolved."""
    out = []
    pos = 0
    for m in _VAR.finditer(value):
        name = m.group(1) or m.group(4)
        out.append(value[pos:m.start()])
        pos = m.end()
        if name == skip:
            out.append("\0")
            continue
        if name in env and (env[name] or m.group(2) not in (":-",)):
            out.append(env[name])
        elif m.group(2) in (":-", "-"):
            out.append(m.group(3) or "")
        else:
            return None
    out.append(value[pos:])
    return "".join(out)


def solve_variable(value: str, env: dict[str, str], new_ref: str) -> tuple[str, str] | None:
    """(variable, its value) that makes `value` name `new_ref`: the last variable that
    occurs once, the others resolved from `.env` or their defaults."""
    names = [m.group(1) or m.group(4) for m in _VAR.finditer(value)]
    for name in reversed(names):
        if names.count(name) != 1:
            continue
        template = _resolve(value, env, name)
        if template is None:
            continue
        head, _, tail = template.partition("\0")
        if (new_ref.startswith(head) and new_ref.endswith(tail)
                and len(new_ref) > len(head) + len(tail)):
            found = new_ref[len(head):len(new_ref) - len(tail)]
            if _SAFE.fullmatch(found):
                return name, found
    return None


def set_env_line(text: str | None, name: str, value: str) -> str:
    """`.env` with `name=value` (the existing line replaced, else appended)."""
    lines = (text or "").splitlines()
    pattern = re.compile(rf"^\s*(export\s+)?{re.escape(name)}\s*=")
    out = [f"{name}={value}" if pattern.match(ln) else ln for ln in lines]
    if out == lines and not any(pattern.match(ln) for ln in lines):
        out.append(f"{name}={value}")
    return "\n".join(out) + "\n"


def rewrite_line(text: str, line: ImageLine, new_ref: str) -> str:
    lines = text.splitlines(keepends=True)
    old = lines[line.index]
    m = _KEY.match(old.rstrip("\n"))
    assert m is not None
    rest = m.group(4)
    comment = ""
    stripped = rest.strip()
    if stripped[:1] not in ("'", '"') and " #" in rest:
        comment = "  #" + rest.split(" #", 1)[1]
    end = "\n" if old.endswith("\n") else ""
    key = old[:old.index(":", len(m.group(1))) + 1]
    lines[line.index] = f'{key} "{new_ref}"{comment}{end}'
    return "".join(lines)


def durable_edit(files: dict[str, str | None], env_path: str, env_text: str | None,
                 service: str, new_ref: str) -> Edit | str:
    """The edit that makes the project's files name `new_ref` for `service`, or why none can:
    files are the compose files in order (later ones override), None for a missing one."""
    found: tuple[str, str, ImageLine] | None = None
    for path, text in files.items():
        if text is None:
            continue
        line = image_line(text, service)
        if line is not None:
            found = (path, text, line)
    if found is None:
        return f"no image: line for {service} in {', '.join(files)}"
    path, text, line = found
    if "$" in line.value:
        env, _ = parse_env_text(env_text or "")
        solved = solve_variable(line.value, env, new_ref)
        if solved is not None:
            name, value = solved
            return Edit(env_path, env_text, set_env_line(env_text, name, value),
                        f"{name}={value} in {env_path} (image: {line.value} in {path})")
    return Edit(path, text, rewrite_line(text, line, new_ref),
                f"image: of {service} in {path} line {line.index + 1} -> {new_ref}")


def named_image(files: dict[str, str | None], env_text: str | None,
                service: str) -> tuple[str, str] | None:
    """(the image the project's own files name for `service`, the file that says so), its
    variables resolved from `.env` or their defaults: what a plain `compose up -d` would
    run. None when no file sets it or a variable cannot be resolved."""
    found: tuple[str, ImageLine] | None = None
    for path, text in files.items():
        line = image_line(text, service) if text is not None else None
        if line is not None:
            found = (path, line)
    if found is None:
        return None
    path, line = found
    env, _ = parse_env_text(env_text or "")
    value = _resolve(line.value, env, skip="") if "$" in line.value else line.value
    return (value, path) if value else None


def full_ref(ref: str) -> str:
    """`app` and `app:latest` are one image to compose and docker."""
    return ref if "@" in ref or ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"


def project_files(info: ComposeInfo, state: str) -> tuple[list[str], str]:
    """The compose files the project's own labels name (ferryman's override under `state`
    left out) and the project's `.env`: what a plain `compose up -d` there reads."""
    own = [f for f in info.config_files if not f.startswith(state.rstrip("/") + "/")]
    return own, f"{info.working_dir.rstrip('/')}/.env"


def named_by_project(info: ComposeInfo, texts: dict[str, str | None],
                     state: str) -> tuple[str, str] | None:
    """named_image() of the project's own files, from `texts` (path -> text, None: absent)."""
    own, env_path = project_files(info, state)
    return named_image({f: texts.get(f) for f in own}, texts.get(env_path), info.service)
