"""Frozen config dataclasses: YAML file -> CLI flags -> the final config saved beside the outputs.

Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pixlabel.errors import InputError

C = TypeVar("C")


def config_from_mapping(cls: type[C], data: dict[str, Any], *, origin: str) -> C:
    """Build ``cls`` from a mapping, refusing keys ``cls`` does not know."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"{origin}: unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return cls(**data)


def load_config(cls: type[C], path: Path | None, overrides: dict[str, Any]) -> C:
    """YAML file (optional) then CLI overrides (``None`` means 'not given on the command line')."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{path}: cannot read config: {exc}") from exc
        if not isinstance(loaded, dict):
            raise InputError(f"{path}: expected a mapping of config keys, got {type(loaded).__name__}")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_mapping(cls, data, origin=str(path) if path else "command line")


def save_config(config: object, path: Path) -> None:
    data = dataclasses.asdict(config)  # type: ignore[call-overload]
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}
    path.write_text(yaml.safe_dump(data, sort_keys=True))
