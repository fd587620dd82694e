"""Pipeline stages: each stage module declares one :class:`Stage`; the run order follows from their inputs.

Adding a stage means writing its module (with ``STAGE``), its kernel, its configuration section,
its cube schema and its tests, and listing it in ``_DECLARED`` below.
"""

from __future__ import annotations

from typing import Iterable

from tasks.stages.base import Stage, StagePlan
from tasks.stages.emissivity import STAGE as EMISSIVITY
from tasks.stages.population import STAGE as POPULATION
from tasks.stages.sed import STAGE as SED
from tasks.stages.sky import STAGE as SKY
from tasks.stages.templates import STAGE as TEMPLATES
from tasks.stages.xsec import STAGE as XSEC
from tasks.stages.yields import STAGE as YIELDS

__all__ = ["STAGES", "ORDER", "UPSTREAM", "resolve", "run_order", "Stage", "StagePlan", "UnknownStageError"]

#: Every stage, as declared by its module (the declaration order breaks ties in the run order).
_DECLARED = (XSEC, TEMPLATES, YIELDS, POPULATION, EMISSIVITY, SKY, SED)


def run_order(stages: Iterable[Stage]) -> tuple[str, ...]:
    """Stage names ordered so that every stage comes after its inputs (a topological sort).

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
        done.append(ready[0].name)
        pending.remove(ready[0])
    return tuple(done)


STAGES: dict[str, Stage] = {s.name: s for s in _DECLARED}
ORDER: tuple[str, ...] = run_order(_DECLARED)
UPSTREAM: dict[str, tuple[str, ...]] = {s.name: s.inputs for s in _DECLARED}


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
