"""The ``xsec`` stage: pp cross sections on the configured (E_p, energy) grids, chunked along E_p."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from catalogs import xsec as xs
from cube.axes import ENERGY, MESSENGER, MESSENGERS
from cube.fingerprint import Fingerprinter
from cube.schema import GroupSchema, VarSpec, freeze
from tasks.stages.base import Stage, StagePlan, placeholder

__all__ = ["STAGE", "SCHEMA", "XsecPayload", "plan", "compute"]

CODE_VERSION = "xsec/1 kafexhiu2014+aafragpy"

SCHEMA = GroupSchema(
    name="xsec",
    dims=("E_p", "energy", "messenger"),
    chunk_dim="E_p",
    data_vars=freeze(
        {
            "dsigma_dE": VarSpec(
                ("E_p", "energy", "messenger"),
                "mb TeV^-1",
                "differential production cross section of secondaries in pp collisions",
            ),
            "sigma_inel": VarSpec(("E_p",), "mb", "total inelastic pp cross section"),
        }
    ),
    coords=freeze(
        {
            "E_p": VarSpec(("E_p",), "TeV", "primary proton total energy"),
            "energy": ENERGY,
            "messenger": MESSENGER,
        }
    ),
)


@dataclass(frozen=True, eq=False)
class XsecPayload:
    """What a cross-section chunk needs: the primary grid E_p [TeV] and the secondary grid energy [TeV]."""

    E_p: np.ndarray
    energy: np.ndarray


def compute(start: int, stop: int, payload: XsecPayload) -> xr.Dataset:
    """Cross sections for primary rows ``[start, stop)``: sigma_inel [mb], dsigma/dE [mb TeV^-1]."""
    E_p = np.asarray(payload.E_p)[start:stop]
    energy = np.asarray(payload.energy)
    dsig = np.stack([xs.dsigma_dE(m, E_p, energy) for m in MESSENGERS], axis=-1)
    return xr.Dataset(
        {
            "dsigma_dE": (("E_p", "energy", "messenger"), dsig),
            "sigma_inel": (("E_p",), xs.sigma_inel(E_p)),
        },
        coords={"E_p": E_p, "energy": energy, "messenger": list(MESSENGERS)},
    )


def plan(config, store, client=None) -> StagePlan:
    """Template, row fingerprints (one per E_p value) and the chunk payload."""
    cfg = config.xsec
    E_p = cfg.E_p.values()
    energy = cfg.energy.values()
    n_p, n_e, n_m = len(E_p), len(energy), len(MESSENGERS)
    template = xr.Dataset(
        {
            "dsigma_dE": (("E_p", "energy", "messenger"), placeholder((n_p, n_e, n_m), (cfg.chunk, n_e, n_m))),
            "sigma_inel": (("E_p",), placeholder((n_p,), (cfg.chunk,))),
        },
        coords={"E_p": E_p, "energy": energy, "messenger": list(MESSENGERS)},
    )
    # A row depends on its own E_p, the whole secondary grid and the code; nothing else.
    rows = Fingerprinter(code=CODE_VERSION, energy=energy).rows(E_p=E_p)
    section = {"xsec": config.xsec.model_dump(mode="json")}
    return StagePlan(
        template=template,
        chunk=cfg.chunk,
        row_fingerprints=rows,
        attrs={"config": section, "references": "Kafexhiu et al. 2014 PRD 90 123014; AAfrag (aafragpy)"},
        payload=XsecPayload(E_p=E_p, energy=energy),
    )


STAGE = Stage(
    name="xsec",
    code_version=CODE_VERSION,
    inputs=(),
    schema=SCHEMA,
    payload=XsecPayload,
    compute=compute,
    plan=plan,
    rank=10,
)
