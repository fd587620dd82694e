"""Pipeline stages: every module of this package that declares ``STAGE`` is a stage.

The modules are found with :mod:`pkgutil` when the package is imported; each declaration
(:class:`~tasks.stages.base.Stage`) holds the stage's inputs, cube schema (registered here
with :func:`cube.schema.register`), code version, payload type, chunk function, plan and
optional prepare step. The run order follows from the inputs (a topological sort; a cycle or
an unknown input is an error at import).

Adding a stage (say per-flavour oscillated neutrinos) touches only:

1. ``tasks/stages/<name>.py``: its ``GroupSchema``, payload dataclass, ``compute``, ``plan``
   (``prepare`` if it has costly derived inputs, ``warm`` if its first chunk loads heavy modules
   or compiled kernels) and ``STAGE = Stage(...)``;
2. ``tasks/kernels/<name>.py``: its physics, pure numpy;
3. ``tasks/config.py``: its configuration section;
4. ``tests/tasks/stages/test_<name>.py`` (and the kernel's tests).

Places that register a stage: one, its module's ``STAGE`` (before this layout, three:
``STAGE``, the ``_DECLARED`` tuple of this package and the ``cube.schema.SCHEMAS`` table, with
the scenario and messenger names copied into the module; they now come from
:mod:`cube.axes`). A new messenger or scenario is added in :mod:`cube.axes`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Iterable

from cube.schema import register
from tasks.stages.base import Stage, StagePlan

__all__ = ["STAGES", "ORDER", "UPSTREAM", "resolve", "run_order", "discover", "Stage", "StagePlan", "UnknownStageError"]


def discover() -> tuple[Stage, ...]:
    """The ``STAGE`` of every module in this package, in module-name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg or info.name == "base":
            continue
        stage = getattr(importlib.import_module(f"{__name__}.{info.name}"), "STAGE", None)
        if isinstance(stage, Stage):
            found.append(stage)
    return tuple(found)


def run_order(stages: Iterable[Stage]) -> tuple[str, ...]:
    """Stage names ordered so that every stage comes after its inputs (a topological sort).

    Among stages whose inputs are all done, the lowest ``rank`` goes first, then the first
    given.

    Raises
    ------
    ValueError
        If a stage reads an undeclared stage, or the inputs form a cycle.
    """
    stages = list(stages)
    names = [s.name for s in stages]
    for s in stages:
        unknown = [i for i in s.inputs if i not in names]
        if unknown:
            raise ValueError(f"stage {s.name!r} reads undeclared stage(s) {unknown}")
    done: list[str] = []
    pending = list(stages)
    while pending:
        ready = [s for s in pending if all(i in done for i in s.inputs)]
        if not ready:
            raise ValueError(f"the stages' inputs form a cycle among {[s.name for s in pending]}")
        first = min(ready, key=lambda s: s.rank)
        done.append(first.name)
        pending.remove(first)
    return tuple(done)


_FOUND = discover()
ORDER: tuple[str, ...] = run_order(_FOUND)
STAGES: dict[str, Stage] = {name: next(s for s in _FOUND if s.name == name) for name in ORDER}
UPSTREAM: dict[str, tuple[str, ...]] = {name: STAGES[name].inputs for name in ORDER}
for _stage in STAGES.values():  # in run order, so that cube.schema.SCHEMAS lists the cubes in it
    register(_stage.schema)


class UnknownStageError(ValueError):
    """A requested stage name does not exist."""


def resolve(stages: Iterable[str] | None) -> list[str]:
    """Requested stages plus everything upstream of them, in run order (default: all)."""
    if stages is None:
        return list(ORDER)
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in UPSTREAM:
            raise UnknownStageError(f"unknown stage {name!r}; stages are: {', '.join(ORDER)}")
        wanted.add(name)
        for up in UPSTREAM[name]:
            add(up)

    for s in stages:
        add(s.strip())
    return [s for s in ORDER if s in wanted]
