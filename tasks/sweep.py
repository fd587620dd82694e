"""Parameter sweeps: one store per value of one configuration key, reusing every chunk it does not touch.

``stardiffuse run --sweep mirroring.f_B_high=0.3,0.7,1.0 --store out.zarr`` brings
``out.zarr`` up to date for the first value, then copies it to
``out.mirroring.f_B_high=0.7.zarr`` (and so on) and runs again with the next value: the
fingerprints make each run recompute only the chunks the key reaches (for f_B: the yields of
main-sequence stars at or below the Kraft break, and everything downstream of them).  The
paper says such bands are needed and shows none; ``stardiffuse figures --band STORE ...``
draws them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

__all__ = ["parse_sweep", "with_value", "sweep_stores"]


def parse_sweep(text: str) -> tuple[str, list]:
    """``"section.key=v1,v2,..."`` -> (dotted key, [values]); values are YAML scalars."""
    from tasks.config import ConfigError

    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ConfigError(f"--sweep: expected KEY=V1,V2,... (for example mirroring.f_B_high=0.3,0.7,1.0), got {text!r}")
    parsed = [yaml.safe_load(v) for v in values.split(",")]
    if len(parsed) < 2:
        raise ConfigError(f"--sweep {key}: give at least two values, got {values!r}")
    return key.strip(), parsed


def with_value(config, key: str, value):
    """A copy of ``config`` with the dotted ``key`` set to ``value``, validated like a file."""
    from tasks.config import with_overrides

    return with_overrides(config, {key: value}, source=f"--sweep {key}={value}")


def sweep_stores(store, key: str, values: list) -> list[Path]:
    """The store of each value: ``store`` for the first, ``<stem>.<key>=<value>.zarr`` beside it for the others."""
    base = Path(store)
    stem = base.name[:-5] if base.name.endswith(".zarr") else base.name
    return [base] + [base.with_name(f"{stem}.{key}={v}.zarr") for v in values[1:]]


def seed_from(previous: Path, target: Path) -> None:
    """Start ``target`` as a copy of ``previous`` (without its lock), so that only touched chunks are recomputed."""
    if target.exists():
        return  # an existing store is brought up to date as it is
    shutil.copytree(previous, target, ignore=shutil.ignore_patterns(".stardiffuse.lock"))
