"""The ``population`` stage: Monte Carlo template weights per stellar population, chunked along ``population``.

Reads only the per-model coordinates of the ``templates`` cube (mass_init, metallicity, age,
stage, duration); never the yields, so a change of f_B, the CR spectrum or the HAWC
calibration samples no star (docs/physics.md P6, issue "population synthesis").

Populations are the distinct (mass, age, metallicity) distributions of the Galaxy model:
``bulge``, ``bulge_young``, ``thick``, and one ``thin`` population per distinct [Fe/H]
offset ``feh_R_slope (R - R_sun) + feh_z_slope |z|`` of the (R, z) grid (one per R node
when ``feh_z_slope`` is 0).  A population's fingerprint holds the template coordinates,
the IMF and Monte Carlo settings and only its own component's age and metallicity
parameters, so changing ``galaxy.thick.age_mean`` resamples the thick disk alone.

Both estimators (``eep``, the default, and the paper's ``knn``) weigh the same sampled stars
and are stored along ``estimator``: ``galaxy.estimator`` is read by the emissivity stage only,
so switching it samples no star.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from cube import store as cstore
from cube.axes import MODEL, MODEL_COORD_SPECS, MODEL_COORDS
from cube.fingerprint import Fingerprinter, digest
from cube.schema import GroupSchema, VarSpec, freeze
from tasks.kernels.galaxy import COMPONENTS
from tasks.stages.base import MissingInputError, Stage, StagePlan, placeholder

__all__ = [
    "STAGE",
    "SCHEMA",
    "PopulationPayload",
    "plan",
    "compute",
    "populations",
    "galaxy_grid",
    "thin_offsets",
    "sampling_parameters",
]

CODE_VERSION = "population/3 imf-strata+age-below-lifetime+estimators-eep-knn+valid-templates"

#: Per-population variables written by the chunk function, besides the weights.
FRACTIONS = ("yield_fraction", "remnant_fraction", "heavy_fraction", "clipped_fraction")

SCHEMA = GroupSchema(
    name="population",
    dims=("population", "estimator", "batch", "model"),
    chunk_dim="population",
    data_vars=freeze(
        {
            "weight": VarSpec(
                ("population", "estimator", "model"),
                "1",
                "expected number of each template per sampled star (all batches)",
            ),
            "weight_batch": VarSpec(
                ("population", "estimator", "batch", "model"),
                "1",
                "expected number of each template per sampled star, per independent batch",
            ),
            "yield_fraction": VarSpec(("population",), "1", "fraction of stars alive and within the template masses"),
            "remnant_fraction": VarSpec(("population",), "1", "fraction of stars older than their lifetime"),
            "heavy_fraction": VarSpec(("population",), "1", "fraction of stars above max_template_mass (zero yield)"),
            "clipped_fraction": VarSpec(
                ("population",), "1", "fraction of stars whose Z was clipped to the library's range"
            ),
            "n_sampled": VarSpec(("population",), "1", "stars sampled"),
        }
    ),
    coords=freeze(
        {
            "population": VarSpec(("population",), "", "population index"),
            "component": VarSpec(("population",), "", "Galactic component (bulge, bulge_young, thin, thick)"),
            "feh_offset": VarSpec(
                ("population",), "dex", "[Fe/H] position offset of the thin disk (0 for other components)"
            ),
            "estimator": VarSpec(
                ("estimator",), "", "per-star template estimator: eep (equivalent evolutionary phase), knn (paper Eq. 19)"
            ),
            "batch": VarSpec(("batch",), "", "Monte Carlo batch"),
            "model": MODEL,
            **MODEL_COORD_SPECS,
        }
    ),
)


@dataclass(frozen=True, eq=False)
class PopulationPayload:
    """What a population chunk needs.

    Attributes
    ----------
    library : dict
        :class:`tasks.kernels.population.TemplateLibrary` arguments: per-model ``mass_init``
        [Msun], ``metallicity``, ``age`` [yr], ``duration`` [yr], ``stage``, ``valid``.
    library_key : str
        Digest of ``library`` (a worker builds the library once per key).
    galaxy : tasks.config.Galaxy
        The Galaxy section (IMF, components, Monte Carlo sizes).
    component, feh_offset : (n_pop,) arrays
        Each population's component and [Fe/H] offset [dex].
    seed : int
        Root of the Monte Carlo streams.
    t_max : float
        Oldest age sampled [yr].
    """

    library: dict
    library_key: str
    galaxy: object
    component: np.ndarray
    feh_offset: np.ndarray
    seed: int
    t_max: float

_LIBRARY_CACHE: dict = {}


def galaxy_grid(galaxy) -> tuple[np.ndarray, np.ndarray]:
    """The emissivity grid: R [kpc] on [0, R_max] and z [kpc] on [0, z_max], both linear (z >= 0 by symmetry)."""
    return np.linspace(0.0, galaxy.R_max, galaxy.R_points), np.linspace(0.0, galaxy.z_max, galaxy.z_points)


def thin_offsets(galaxy, R: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Thin-disk [Fe/H] position offset [dex] on the (R, z) grid, shape (n_R, n_z), rounded to 1e-12 dex."""
    t = galaxy.thin
    off = t.feh_R_slope * (R[:, None] - galaxy.R_sun) + t.feh_z_slope * np.abs(z[None, :])
    return np.round(off, 12) + 0.0


def populations(galaxy) -> tuple[np.ndarray, np.ndarray]:
    """``(component, feh_offset)`` of every distinct population, in cube order."""
    R, z = galaxy_grid(galaxy)
    thin = np.unique(thin_offsets(galaxy, R, z))
    comps = ["bulge", "bulge_young", "thick"] + ["thin"] * thin.size
    offsets = np.concatenate([[0.0, 0.0, 0.0], thin])
    return np.array(comps), offsets


def sampling_parameters(galaxy, component: str) -> dict:
    """The configuration values a component's samples depend on (and nothing else: no densities)."""
    if component == "thin":
        t = galaxy.thin
        return {"age_rate": t.age_rate, "age_max": t.age_max, "feh0": t.feh0, "feh_age_slope": t.feh_age_slope}
    if component == "thick":
        t = galaxy.thick
        return {"age_mean": t.age_mean, "age_sigma": t.age_sigma, "feh": t.feh}
    b = galaxy.bulge
    if component == "bulge":
        return {"age": b.age, "feh": list(b.feh), "feh_weights": list(b.feh_weights)}
    if component == "bulge_young":
        return {"young_ages": list(b.young_ages), "feh": list(b.feh), "feh_weights": list(b.feh_weights)}
    raise ValueError(f"unknown component {component!r}")


def _library(payload: PopulationPayload):
    from tasks.kernels.population import TemplateLibrary

    key = payload.library_key
    lib = _LIBRARY_CACHE.get(key)
    if lib is None:  # once per worker process, not once per chunk
        _LIBRARY_CACHE.clear()
        lib = TemplateLibrary(**payload.library)
        _LIBRARY_CACHE[key] = lib
    return lib


def compute(start: int, stop: int, payload: PopulationPayload) -> xr.Dataset:
    """Template weights of populations ``[start, stop)`` for every estimator (per batch and their mean)."""
    from tasks.kernels.population import ESTIMATORS, population_weights

    lib = _library(payload)
    g = payload.galaxy
    comps = payload.component[start:stop]
    offs = payload.feh_offset[start:stop]
    n = stop - start
    wb = np.zeros((n, len(ESTIMATORS), g.batches, lib.size))
    frac = {k: np.zeros(n) for k in FRACTIONS}
    n_sampled = np.zeros(n, np.int64)
    for comp in dict.fromkeys(comps):
        rows = np.flatnonzero(comps == comp)
        results = population_weights(
            lib,
            comp,
            offs[rows],
            g,
            seed=payload.seed,
            n_batches=g.batches,
            stars_per_batch=g.stars_per_population // g.batches,
            t_max=payload.t_max,
            estimators=ESTIMATORS,
        )
        for r, res in zip(rows, results):
            wb[r] = res.weight_batch
            for k in FRACTIONS:
                frac[k][r] = getattr(res, k)
            n_sampled[r] = res.n_sampled
    coords = {
        "population": np.arange(start, stop),
        "component": ("population", comps),
        "feh_offset": ("population", offs),
        "estimator": list(ESTIMATORS),
    }
    return xr.Dataset(
        {
            "weight": (("population", "estimator", "model"), wb.mean(axis=2)),
            "weight_batch": (("population", "estimator", "batch", "model"), wb.astype(np.float32)),
            **{k: (("population",), v) for k, v in frac.items()},
            "n_sampled": (("population",), n_sampled),
        },
        coords=coords,
    )


def _template_coords(store) -> xr.Dataset:
    tpl = cstore.open_group_if_exists(store, "templates", dask=False)
    if tpl is None:
        raise MissingInputError("run the templates stage first")
    return xr.Dataset({k: ("model", tpl[k].values) for k in MODEL_COORDS})  # one read per coordinate


def plan(config, store, client=None) -> StagePlan:
    """Template, one fingerprint per population, and the Monte Carlo payload."""
    from tasks.kernels.population import ESTIMATORS, TemplateLibrary

    g = config.galaxy
    meta = _template_coords(store)
    # invalid templates (no structure model, zero yields) get no weight but keep their track's lifetime
    usable = meta["valid"].values.astype(bool)
    library = {k: meta[k].values.astype(float) for k in ("mass_init", "metallicity", "age", "duration")}
    library["stage"] = meta["stage"].values.astype(str)
    library["valid"] = usable
    lib = TemplateLibrary(**library)  # checks the library on the client, before anything is written
    lib.check_mass_range(
        max(g.imf.breaks[0], 0.1), min(g.imf.max_template_mass, g.imf.breaks[-1]), "galaxy.imf"
    )
    comps, offsets = populations(g)
    n_pop, n_mod, n_b, n_e = comps.size, meta.sizes["model"], g.batches, len(ESTIMATORS)
    library_key = digest({"library": library})
    t_max = float(config.templates.max_age)
    common = {
        "code": CODE_VERSION,
        "library": library_key,
        "imf": g.imf,
        "neighbours": g.neighbours,
        "z_sun": g.z_sun,
        "stars": g.stars_per_population,
        "batches": g.batches,
        "seed": config.run.seed,
        "t_max": t_max,
    }
    params = {c: digest(sampling_parameters(g, c)) for c in COMPONENTS}
    rows = Fingerprinter(**common).rows(
        component=comps, feh_offset=offsets, params=np.array([params[c] for c in comps])
    )
    chunk = g.population_chunk
    template = xr.Dataset(
        {
            "weight": (("population", "estimator", "model"), placeholder((n_pop, n_e, n_mod), (chunk, n_e, n_mod))),
            "weight_batch": (
                ("population", "estimator", "batch", "model"),
                placeholder((n_pop, n_e, n_b, n_mod), (chunk, n_e, n_b, n_mod), np.float32),
            ),
            **{k: (("population",), placeholder((n_pop,), (chunk,))) for k in FRACTIONS},
            "n_sampled": (("population",), placeholder((n_pop,), (chunk,), np.int64)),
        },
        coords={
            "population": np.arange(n_pop),
            "component": ("population", comps),
            "feh_offset": ("population", offsets),
            "estimator": list(ESTIMATORS),
            "batch": np.arange(n_b),
            "model": np.arange(n_mod),
            **{k: ("model", meta[k].values) for k in MODEL_COORDS},
        },
    )
    n_stars = g.stars_per_population
    attrs = {
        "config": {"galaxy": g.model_dump(mode="json"), "seed": config.run.seed, "t_max": t_max},
        "stars_per_population": n_stars,
        "sampling": "stratified in mass; batch means give the standard error",
        "estimators": "eep: equivalent evolutionary phase (default); knn: the paper's Eq. 19, same stars",
    }

    def describe(computed) -> dict:
        n = sum(len(k) for k in computed) * n_stars
        return {"stars_sampled": int(n)}

    return StagePlan(
        template=template,
        chunk=chunk,
        row_fingerprints=rows,
        attrs=attrs,
        payload=PopulationPayload(
            library=library,
            library_key=library_key,
            galaxy=g,
            component=comps,
            feh_offset=offsets,
            seed=config.run.seed,
            t_max=t_max,
        ),
        notes=[f"{n_pop} populations ({int((comps == 'thin').sum())} thin-disk [Fe/H] offsets) x {n_stars:.3g} stars"]
        + (
            [f"{int((~usable).sum())} invalid templates (no structure model) carry no weight"]
            if not usable.all()
            else []
        ),
        describe=describe,
    )


def warm(on_workers: bool) -> None:
    """Workers: the population kernels' module (the Monte Carlo and its estimators)."""
    if on_workers:
        from tasks.kernels import population  # noqa: F401


STAGE = Stage(
    name="population",
    code_version=CODE_VERSION,
    inputs=("templates",),
    schema=SCHEMA,
    payload=PopulationPayload,
    compute=compute,
    plan=plan,
    rank=40,
    warm=warm,
)
