"""Pipeline stages, in run order; ``None`` marks a stage that is not built yet."""

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

__all__ = ["STAGES", "ORDER", "UPSTREAM", "resolve", "Stage", "StagePlan", "UnknownStageError"]

ORDER = ("xsec", "templates", "yields", "population", "emissivity", "sky", "sed")

UPSTREAM = {
    "xsec": (),
    "templates": (),
    "yields": ("xsec", "templates"),
    "population": ("templates",),
    "emissivity": ("yields", "population"),
    "sky": ("emissivity",),
    "sed": ("emissivity",),
}

STAGES: dict[str, Stage | None] = {name: None for name in ORDER}
STAGES["xsec"] = XSEC
STAGES["templates"] = TEMPLATES
STAGES["yields"] = YIELDS
STAGES["population"] = POPULATION
STAGES["emissivity"] = EMISSIVITY
STAGES["sky"] = SKY
STAGES["sed"] = SED


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
