"""The ``sed`` stage: region spectra, chunked along ``region`` (docs/physics.md P7).

For every built-in region (docs/design.md) and every user box of ``sky.regions``: the
solid-angle weighted mean intensity, the flux (mean x solid angle) and the solid angle.
Each region is integrated on its own exact (l, sin b) quadrature (``tasks.kernels.regions``)
with the same line-of-sight operator as the sky maps, so areas and means do not depend on
the map's nside.  Regions are fingerprinted one by one: adding a user region computes that
region alone.  The Monte Carlo error of a region mean adds linearly over directions (every
direction sees the same sampled populations).

The mean is linear in L_bar (B = w A / Omega), but its error is not (components add in
quadrature in each direction before the directions add linearly), so the store caches the
operators of every quadrature node (:func:`tasks.stages.sky.region_entry`), not B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from cube.axes import ENERGY, MESSENGER, MESSENGERS, SCENARIO, SCENARIOS
from cube.fingerprint import Fingerprinter
from cube.schema import GroupSchema, VarSpec, freeze
from tasks.kernels.regions import BUILTIN_REGIONS, region_nodes, solid_angle
from tasks.stages.base import Stage, StagePlan, placeholder
from tasks.stages.sky import (
    CODE_VERSION as SKY_CODE,
    cached_intensity,
    emissivity_inputs,
    los_payload,
    los_settings,
    operators_found,
    region_entry,
    upstream_key,
)

__all__ = ["STAGE", "SCHEMA", "SedPayload", "plan", "compute", "regions"]

CODE_VERSION = f"sed/2 exact-l-sinb-quadrature ({SKY_CODE})"

_DIMS = ("region", "scenario", "messenger", "energy")

SCHEMA = GroupSchema(
    name="sed",
    dims=_DIMS,
    chunk_dim="region",
    data_vars=freeze(
        {
            "mean_intensity": VarSpec(_DIMS, "TeV^-1 cm^-2 s^-1 sr^-1", "solid-angle weighted mean intensity"),
            "mean_intensity_stderr": VarSpec(
                _DIMS, "TeV^-1 cm^-2 s^-1 sr^-1", "Monte Carlo standard error of the mean intensity"
            ),
            "flux": VarSpec(_DIMS, "TeV^-1 cm^-2 s^-1", "flux integrated over the region"),
            "solid_angle": VarSpec(("region",), "sr", "solid angle of the region"),
        }
    ),
    coords=freeze(
        {
            "region": VarSpec(("region",), "", "sky region name"),
            "scenario": SCENARIO,
            "messenger": MESSENGER,
            "energy": ENERGY,
        }
    ),
)


@dataclass(frozen=True, eq=False)
class SedPayload:
    """What a sed chunk needs.

    Attributes
    ----------
    los : dict
        Line-of-sight inputs of :func:`tasks.stages.sky.cached_intensity` (:func:`~tasks.stages.sky.los_payload`).
    names : (n_regions,) str
        Region names, in cube order.
    boxes : dict
        ``{name: ((l_min, l_max, b_min, b_max), ...)}`` [deg] of every region.
    dl : float
        Longitude step of the region quadrature [deg].
    nb : int
        Nodes in sin b per box.
    """

    los: dict
    names: np.ndarray
    boxes: dict
    dl: float
    nb: int


def regions(sky) -> dict[str, tuple]:
    """Built-in regions, then the user's boxes, as ``{name: ((l_min, l_max, b_min, b_max), ...)}``."""
    out = dict(BUILTIN_REGIONS)
    for r in sky.regions:
        out[r.name] = ((float(r.l[0]), float(r.l[1]), float(r.b[0]), float(r.b[1])),)
    return out


def compute(start: int, stop: int, payload: SedPayload) -> xr.Dataset:
    """Mean intensity, its error, flux and solid angle of regions ``[start, stop)``."""
    los = payload.los
    lbar = emissivity_inputs(los["store"], los["emissivity_key"], los["modes"])
    n_E = len(lbar["energy"])
    names = payload.names[start:stop]
    shape = (len(names), len(SCENARIOS), len(MESSENGERS), n_E)
    mean = np.zeros((len(names), int(np.prod(shape[1:]))))
    err = np.zeros_like(mean)
    omega = np.zeros(len(names))
    from threadpoolctl import threadpool_limits

    for i, name in enumerate(names):
        l, b, w = region_nodes(payload.boxes[name], payload.dl, payload.nb)
        I, S = cached_intensity(l, b, los, lbar, region_entry(los, payload.boxes[name], payload.dl, payload.nb))
        omega[i] = w.sum()
        with threadpool_limits(limits=1, user_api="blas"):  # the same sums in every process
            mean[i] = w @ I / omega[i]
            err[i] = w @ S / omega[i]
    return xr.Dataset(
        {
            "mean_intensity": (_DIMS, mean.reshape(shape)),
            "mean_intensity_stderr": (_DIMS, err.reshape(shape)),
            "flux": (_DIMS, (mean * omega[:, None]).reshape(shape)),
            "solid_angle": (("region",), omega),
        },
        coords={"region": np.asarray(names)},
    )


def plan(config, store, client=None) -> StagePlan:
    """Template (one row per region), region fingerprints and the payload."""
    from cube import store as cstore

    s = config.sky
    key = upstream_key(store)
    e = cstore.open_group_if_exists(store, "emissivity", dask=False)
    energy = e.energy.values
    boxes = regions(s)
    names = np.array(list(boxes))
    n = names.size
    settings = los_settings(config)
    los = los_payload(config, store, key, e)
    fp = Fingerprinter(code=CODE_VERSION, emissivity=key, los=settings, dl=s.region_dl, nb=s.region_b_nodes)
    rays = [region_nodes(boxes[k], s.region_dl, s.region_b_nodes)[0].size for k in names]
    rows = fp.rows(region=names, boxes=[boxes[k] for k in names])
    full = (n, len(SCENARIOS), len(MESSENGERS), energy.size)
    dims = _DIMS
    template = xr.Dataset(
        {
            "mean_intensity": (dims, placeholder(full, (1,) + full[1:])),
            "mean_intensity_stderr": (dims, placeholder(full, (1,) + full[1:])),
            "flux": (dims, placeholder(full, (1,) + full[1:])),
            "solid_angle": (("region",), placeholder((n,), (1,))),
        },
        coords={"region": names, "scenario": list(SCENARIOS), "messenger": list(MESSENGERS), "energy": energy},
    )
    return StagePlan(
        template=template,
        chunk=1,
        row_fingerprints=rows,
        attrs={
            "config": {"regions": {k: [list(b) for b in v] for k, v in boxes.items()}, "los": settings,
                       "region_dl": s.region_dl, "region_b_nodes": s.region_b_nodes},
            "solid_angle_exact": {k: solid_angle(v) for k, v in boxes.items()},
        },
        payload=SedPayload(los=los, names=names, boxes=boxes, dl=s.region_dl, nb=s.region_b_nodes),
        notes=[f"{n} regions ({len(s.regions)} from sky.regions)"],
        describe=operators_found([region_entry(los, boxes[k], s.region_dl, s.region_b_nodes) for k in names], 1),
        # a region's rays, so that the largest region starts first instead of ending the stage alone
        cost=lambda start, stop: float(sum(rays[start:stop])),
    )


STAGE = Stage(
    name="sed",
    code_version=CODE_VERSION,
    inputs=("emissivity",),
    schema=SCHEMA,
    payload=SedPayload,
    compute=compute,
    plan=plan,
    rank=70,
)
