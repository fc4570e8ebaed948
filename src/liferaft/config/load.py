"""Read the controller's YAML config file into :class:`Settings`.

Any string setting may be given by reference so secrets stay out of the
file: ``{"$env": "NAME"}`` (an environment variable) or ``{"$file": "path"}``
(the file's content, without the trailing newline; relative paths are
relative to the config file).  References are resolved at load time.

Every problem becomes one :class:`~liferaft.errors.ConfigError` whose
message names the file, the key path (``api.port``) and what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from liferaft.errors import ConfigError

from .model import Settings

REF_KEYS = ("$env", "$file")


def key_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``("peers", 0, "name")`` → ``peers[0].name``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def resolve_refs(value: Any, base_dir: Path, loc: tuple[int | str, ...] = ()) -> Any:
    """Replace every ``{"$env": ...}`` / ``{"$file": ...}`` in ``value``; raise ``ValueError`` naming the key."""
    if isinstance(value, Mapping):
        keys = set(value)
        if keys & set(REF_KEYS):
            if len(keys) != 1:
                raise _RefError(
                    loc,
                    f"a reference has exactly one key, {REF_KEYS[0]} or {REF_KEYS[1]}; got {sorted(map(str, keys))}",
                )
            ((kind, target),) = value.items()
            if not isinstance(target, str) or not target:
                raise _RefError(loc, f"{kind} needs a non-empty string, got {target!r}")
            if kind == "$env":
                if target not in os.environ:
                    raise _RefError(loc, f"environment variable {target} is not set")
                return os.environ[target]
            path = Path(target).expanduser()
            if not path.is_absolute():
                path = base_dir / path
            try:
                return path.read_text().rstrip("\r\n")
            except OSError as err:
                raise _RefError(
                    loc, f"cannot read secret file {path}: {err.strerror or err}"
                ) from None
        return {k: resolve_refs(v, base_dir, (*loc, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_refs(v, base_dir, (*loc, i)) for i, v in enumerate(value)]
    return value


class _RefError(Exception):
    def __init__(self, loc: tuple[int | str, ...], problem: str) -> None:
        super().__init__(problem)
        self.loc = loc
        self.problem = problem


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The settings allowed where an unknown key ``loc`` was found."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", None)
        current = args[0] if args and getattr(ann, "__origin__", None) is list else ann
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return None


def describe_validation_error(err: ValidationError, model: type[BaseModel] = Settings) -> str:
    """One line per problem: ``key.path: problem``."""
    parts = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = key_path(loc)
        if e["type"] == "extra_forbidden":
            known = _known_keys(model, loc)
            msg = "unknown setting"
            if known:
                msg += f" (known here: {', '.join(known)})"
        elif e["type"] == "missing":
            msg = "required setting is missing"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg += f" (got {e['input']!r})"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def _relative_paths(data: dict[str, Any], base_dir: Path) -> None:
    """Make paths in the file relative to the file's directory, not the process's."""
    for key in ("state_dir",):
        if isinstance(data.get(key), str) and not Path(data[key]).expanduser().is_absolute():
            data[key] = str(base_dir / data[key])
    sites = (
        [data.get("site"), *(data.get("peers") or [])]
        if isinstance(data.get("peers") or [], list)
        else [data.get("site")]
    )
    for site in sites:
        if isinstance(site, dict) and isinstance(site.get("clouds_yaml"), str):
            p = Path(site["clouds_yaml"]).expanduser()
            site["clouds_yaml"] = str(p if p.is_absolute() else base_dir / p)


def parse_config(data: Any, *, source: str = "<config>", base_dir: Path | None = None) -> Settings:
    """Validate already-parsed YAML (a mapping) into :class:`Settings`."""
    base = base_dir or Path.cwd()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the file must hold a mapping of settings, not {type(data).__name__}"
        )
    try:
        resolved = resolve_refs(data, base)
    except _RefError as err:
        raise ConfigError(f"{source}: {key_path(err.loc)}: {err.problem}") from None
    _relative_paths(resolved, base)
    try:
        return Settings.model_validate(resolved)
    except ValidationError as err:
        raise ConfigError(f"{source}: {describe_validation_error(err)}") from None


def load_config(path: str | os.PathLike[str]) -> Settings:
    """Load and validate the config file at ``path``; every problem is a :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except OSError as err:
        raise ConfigError(f"{p}: cannot read config file: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{p}: invalid YAML{where}: {problem}") from None
    return parse_config(data, source=str(p), base_dir=p.resolve().parent)
