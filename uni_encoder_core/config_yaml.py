"""Typed configs from and to YAML: strict loading into a dataclass (unknown keys, wrong types and sizes out of
bounds are named with the file and the dotted key) and atomic saving, so that a round trip gives an equal object.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.config_bounds import check_config
from uni_encoder_core.errors import ConfigError

T = TypeVar("T")


MAX_CONFIG_BYTES = 1 << 20
"""A configuration is a few kilobytes; a larger file is the wrong file (and is not parsed)."""


def load_config(path: str | os.PathLike, cls: type[T]) -> T:
    """Read ``path`` (YAML, UTF-8) into an instance of dataclass ``cls`` and check its sizes (``check_config``).

    Missing keys take their defaults. Raises :class:`ConfigError` naming the file and the fix for: a missing or
    unreadable file, a file over :data:`MAX_CONFIG_BYTES`, text that is not UTF-8 or not YAML, nesting too deep
    to parse, an unknown key, a wrong type (key and expected type named), a non-finite number or a size out of
    bounds.
    """
    return from_dict(cls, read_yaml(path), source=str(path))


def read_yaml(path: str | os.PathLike) -> Any:
    """The parsed content of the YAML file ``path`` (an empty file gives ``{}``); raises :class:`ConfigError`."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size:,d} bytes is not a configuration file "
                              f"(those are a few KB, at most {MAX_CONFIG_BYTES:,d}); check the path")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file; give the .yaml file inside it") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror}); check its permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save it as UTF-8 YAML") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a configuration; check the file's structure") from None
    return {} if raw is None else raw


def from_dict(cls: type[T], raw: Any, source: str = "<dict>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from a plain mapping, checking every key, type and (at the top) the bounds.

    Raises :class:`ConfigError` naming ``source`` and the dotted key.
    """
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a mapping of keys to values, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0][:60]}' in {cls.__name__} "
            f"(known keys: {', '.join(sorted(known))})"
        )
    values = {name: _coerce(hints[name], raw[name], source, f"{prefix}{name}") for name in raw}
    try:
        config = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None
    if not prefix:
        check_config(config, source)
    return config


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _show(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a message stays one readable line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _coerce(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, source, key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, source, key)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: key '{key}' expects {_type_name(tp)}, got {_show(value)}")
    if origin is Literal:
        if not any(type(value) is type(a) and value == a for a in args):
            raise ConfigError(f"{source}: key '{key}' expects one of {list(args)}, got {_show(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: key '{key}' expects a list, got {type(value).__name__}")
        return [_coerce(args[0], v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float and type(value) in (int, float):
        if not math.isfinite(value):
            raise ConfigError(f"{source}: key '{key}' expects a finite number, got {value}")
        return float(value)
    if tp in (int, float, str, bool) and type(value) is tp:
        return value
    raise ConfigError(
        f"{source}: key '{key}' expects {_type_name(tp)}, got {type(value).__name__} ({_show(value)})"
    )


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-data view of a config dataclass (what ``save_config`` writes)."""
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | os.PathLike) -> None:
    """Write ``config`` as YAML; the file is replaced atomically (temp file, fsync, rename)."""
    with atomic_writer(path, "w") as fh:
        yaml.safe_dump(to_dict(config), fh, sort_keys=False)
