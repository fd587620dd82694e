"""The ``emissivity`` stage: q(R, z, E) = sum_c n_c(R, z) L_bar_c(E; R, z), chunked along ``R``.

Reads the ``population`` weights and the ``yields`` luminosities: the mean luminosity per
star of each population is one matrix product, L_bar = weights @ L(model, E), done per
Monte Carlo batch so that the batch spread gives its standard error (docs/physics.md P6, paper
Eq. 19), with the weights of the estimator ``galaxy.estimator`` names.  No star is sampled
here: a yields-only change, or a change of estimator, reruns this product alone.

Units: n in pc^-3 in the cube, converted to cm^-3 for q [TeV^-1 s^-1 cm^-3].  The
thin-disk population of a cell is the one with the cell's [Fe/H] offset; the bulge's young
stars are a component of their own inside their box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
import zarr

from cube import store as cstore
from cube.axes import ENERGY, MESSENGER, MESSENGERS, SCENARIO, SCENARIOS
from cube.fingerprint import Fingerprinter, combine
from cube.schema import GroupSchema, VarSpec, freeze
from tasks.kernels.galaxy import COMPONENTS, PC_CM, component_densities, density_parameters
from tasks.stages.base import MissingInputError, Stage, StagePlan, placeholder, upstream_fingerprint, upstream_rows
from tasks.stages.population import galaxy_grid, thin_offsets

__all__ = ["STAGE", "SCHEMA", "EmissivityPayload", "plan", "compute", "population_index", "batch_means"]

CODE_VERSION = "emissivity/3 sparse-batch-means"

_DIMS5 = ("R", "z", "scenario", "messenger", "energy")
_DIMS6 = ("R", "z", "component", "scenario", "messenger", "energy")

SCHEMA = GroupSchema(
    name="emissivity",
    dims=_DIMS6,
    chunk_dim="R",
    data_vars=freeze(
        {
            "emissivity": VarSpec(_DIMS5, "TeV^-1 s^-1 cm^-3", "volume emissivity"),
            "emissivity_stderr": VarSpec(
                _DIMS5, "TeV^-1 s^-1 cm^-3", "Monte Carlo standard error of the volume emissivity"
            ),
            "emissivity_component": VarSpec(_DIMS6, "TeV^-1 s^-1 cm^-3", "volume emissivity of each Galactic component"),
            "luminosity_mean": VarSpec(
                _DIMS6, "TeV^-1 s^-1", "mean luminosity per star of the component's population at (R, z)"
            ),
            "luminosity_mean_stderr": VarSpec(
                _DIMS6, "TeV^-1 s^-1", "Monte Carlo standard error of the mean luminosity per star"
            ),
            "n_stars": VarSpec(("R", "z"), "pc^-3", "stellar number density"),
            "n_stars_component": VarSpec(("R", "z", "component"), "pc^-3", "stellar number density per component"),
        }
    ),
    coords=freeze(
        {
            "R": VarSpec(("R",), "kpc", "galactocentric cylindrical radius"),
            "z": VarSpec(("z",), "kpc", "height above the Galactic plane (the model is symmetric in z)"),
            "component": VarSpec(("component",), "", "Galactic component"),
            "scenario": SCENARIO,
            "messenger": MESSENGER,
            "energy": ENERGY,
        }
    ),
)


@dataclass(frozen=True, eq=False)
class EmissivityPayload:
    """What an emissivity chunk needs.

    Attributes
    ----------
    store : str
        The store whose population and yields cubes the chunk reads.
    galaxy : tasks.config.Galaxy
        Densities, mean stellar mass and the estimator to use.
    R, z : (n_R,), (n_z,) the grid [kpc].
    index : (n_R, n_z, n_components) int
        The population of each component at each (R, z) (:func:`population_index`).
    yields_key : str
        Fingerprint of the whole yields cube (keys the worker's copy of it).
    population_rows : tuple of str
        Fingerprint of every population's row (with ``yields_key`` and the estimator, keys the
        worker's memo of its mean luminosity).
    """

    store: str
    galaxy: object
    R: np.ndarray
    z: np.ndarray
    index: np.ndarray
    yields_key: str
    population_rows: tuple[str, ...]


def population_index(galaxy, component: np.ndarray, feh_offset: np.ndarray, R: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Index of the population of each component at each (R, z): shape (n_R, n_z, n_components)."""
    comp = np.asarray(component).astype(str)
    off = np.asarray(feh_offset, float)
    out = np.empty((R.size, z.size, len(COMPONENTS)), np.int64)
    for c, name in enumerate(COMPONENTS):
        if name == "thin":
            thin = np.flatnonzero(comp == "thin")
            grid = thin_offsets(galaxy, R, z)
            pos = np.searchsorted(off[thin], grid)
            pos = np.clip(pos, 0, thin.size - 1)
            if not np.allclose(off[thin][pos], grid, rtol=0, atol=1e-9):
                raise ValueError("the population cube has no thin-disk population for some (R, z): rerun population")
            out[:, :, c] = thin[pos]
        else:
            (idx,) = np.flatnonzero(comp == name)
            out[:, :, c] = idx
    return out


def batch_means(weight: np.ndarray, weight_batch: np.ndarray, luminosity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean L_bar = weight @ L and its standard error from the spread of the batches.

    Parameters
    ----------
    weight : (n_pop, n_model)
        Templates per sampled star, all batches (float64: the mean is exact).
    weight_batch : (n_pop, n_batch, n_model)
        The same per independent batch (float32 is plenty for their spread).
    luminosity : (n_model, ...) [TeV^-1 s^-1]

    Returns
    -------
    mean, stderr : (n_pop, ...) [TeV^-1 s^-1]
    """
    from threadpoolctl import threadpool_limits

    n_pop, n_b, n_m = weight_batch.shape
    flat = np.ascontiguousarray(luminosity.reshape(n_m, -1), np.float64)
    mean = np.empty((n_pop, flat.shape[1]))
    err = np.empty((n_pop, flat.shape[1]))
    # One population at a time on one BLAS thread: the same product, summed in the same
    # order, whichever chunk or process computes it (bit-identical cubes for any chunking
    # and any number of workers).  Only the templates a population's stars fall on enter its
    # product (~1 in 10 at paper scale): the zeros would add nothing but memory traffic.
    with threadpool_limits(limits=1, user_api="blas"):
        for p in range(n_pop):
            w, wb = weight[p], weight_batch[p]
            hit = np.flatnonzero((w != 0) | (wb != 0).any(axis=0))
            sub = flat[hit]
            mean[p] = np.asarray(w[hit], np.float64) @ sub
            Lb = np.asarray(wb[:, hit], np.float64) @ sub
            err[p] = Lb.std(axis=0, ddof=1) / np.sqrt(n_b)
    shape = (n_pop,) + luminosity.shape[1:]
    return mean.reshape(shape), err.reshape(shape)


#: The yields cube as the workers read it, by its fingerprint: every chunk reads all of it
#: (283 MB at paper scale), so a process keeps one copy, not one per chunk.
_YIELDS_CACHE: dict = {}
#: Mean luminosity per star and its error of each population, by (yields fingerprint,
#: estimator, population fingerprint): the bulge, young-bulge and thick-disk populations, and
#: the thin-disk ones on chunk borders, serve several chunks.
_MEANS_CACHE: dict = {}


def _yields_luminosity(store: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """L (model, scenario, messenger, energy) [TeV^-1 s^-1] and ``valid`` of the yields cube, read once per process.

    Only these two arrays are read (not the string coordinates of every model).
    """
    got = _YIELDS_CACHE.get(key)
    if got is not None:
        return got
    # zarr itself, not xarray's lazy indexing: the cube's dims are already (model, scenario,
    # messenger, energy) (its schema), and the array arrives without a second copy (1.0 s
    # against 1.9 s for the paper's 283 MB).
    y = zarr.open_group(str(store), path="yields", mode="r", zarr_format=3)
    L = np.asarray(y["luminosity"][...])
    out = (L, np.asarray(y["valid"][...], bool))
    _YIELDS_CACHE.clear()
    _MEANS_CACHE.clear()
    _YIELDS_CACHE[key] = out
    return out


def _population_means(payload: EmissivityPayload, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`batch_means` of the populations ``used`` with the yields cube, each computed once per process.

    A population's product is the same one whichever chunk asks for it (:func:`batch_means`
    computes populations one by one), so the memo changes no bit.
    """
    est = payload.galaxy.estimator
    L, valid = _yields_luminosity(payload.store, payload.yields_key)
    keys = [(payload.yields_key, est, payload.population_rows[p]) for p in used]
    todo = np.array([p for p, k in zip(used, keys) if k not in _MEANS_CACHE], dtype=np.int64)
    if todo.size:
        pop = xr.open_zarr(payload.store, group="population", consolidated=False, zarr_format=3, chunks=None)
        e = list(pop.estimator.values).index(est)
        weight = pop.weight.isel(population=todo, estimator=e).values
        # Invalid templates have zero yields by construction; a weight on one would silently
        # drop stars, so it is an error (population and yields made from different libraries).
        if weight[:, ~valid].any():
            raise ValueError("population weights fall on invalid templates (no structure model); rerun population")
        batch = pop.weight_batch.isel(population=todo, estimator=e).values
        mean, err = batch_means(weight, batch, L)
        for i, p in enumerate(todo):
            _MEANS_CACHE[(payload.yields_key, est, payload.population_rows[p])] = (mean[i], err[i])
    got = [_MEANS_CACHE[k] for k in keys]
    return np.stack([m for m, _ in got]), np.stack([s for _, s in got])


def compute(start: int, stop: int, payload: EmissivityPayload) -> xr.Dataset:
    """Emissivities of R rows ``[start, stop)`` for every z, component, scenario, messenger and energy."""
    g = payload.galaxy
    R, z = payload.R[start:stop], payload.z
    index = payload.index[start:stop]  # (n_R, n_z, n_c)
    used = np.unique(index)
    mean_u, err_u = _population_means(payload, used)
    where = np.searchsorted(used, index)
    mean, err = mean_u[where], err_u[where]  # (n_R, n_z, n_c, s, m, E)
    rho = component_densities(R[:, None], z[None, :], g)
    n_c = np.stack([rho[c] for c in COMPONENTS], axis=-1) / g.mean_stellar_mass  # pc^-3
    n_cm = (n_c / PC_CM**3)[..., None, None, None]
    q_c = n_cm * mean
    return xr.Dataset(
        {
            "emissivity": (_DIMS5, q_c.sum(axis=2)),
            "emissivity_stderr": (_DIMS5, np.sqrt(_component_variance(n_cm * err))),
            "emissivity_component": (_DIMS6, q_c),
            "luminosity_mean": (_DIMS6, mean),
            "luminosity_mean_stderr": (_DIMS6, err),
            "n_stars": (("R", "z"), n_c.sum(axis=-1)),
            "n_stars_component": (("R", "z", "component"), n_c),
        },
        coords={"R": R},
    )


def _component_variance(sigma_c: np.ndarray) -> np.ndarray:
    # Components are sampled from independent streams: their variances add.
    return (sigma_c**2).sum(axis=2)


def _clipped_share(galaxy, R, z, index, clipped_fraction) -> dict[str, float]:
    """Fraction of each component's stars in the Galaxy whose Z was clipped (cells weighted by 2 pi R n)."""
    rho = component_densities(R[:, None], z[None, :], galaxy)
    out = {}
    for c, name in enumerate(COMPONENTS):
        w = rho[name] * R[:, None]
        total = w.sum()
        out[name] = float((w * clipped_fraction[index[:, :, c]]).sum() / total) if total > 0 else 0.0
    return out


def plan(config, store, client=None) -> StagePlan:
    """Template, one fingerprint per R row, and the product's payload."""
    g = config.galaxy
    pop = cstore.open_group_if_exists(store, "population", dask=False)
    y = cstore.open_group_if_exists(store, "yields", dask=False)
    if pop is None or y is None:
        missing = [n for n, d in (("population", pop), ("yields", y)) if d is None]
        raise MissingInputError(f"run the {', '.join(missing)} stage(s) first")
    if pop.sizes["model"] != y.sizes["model"]:
        raise MissingInputError("the population and yields cubes were made from different template libraries; rerun both")
    R, z = galaxy_grid(g)
    index = population_index(g, pop.component.values, pop.feh_offset.values, R, z)
    pop_rows = upstream_rows(store, "population", pop.sizes["population"])
    yields_fp = upstream_fingerprint(store, "yields")
    energy = y.energy.values
    density = density_parameters(g)
    fp = Fingerprinter(code=CODE_VERSION, yields=yields_fp, density=density, z=z, energy=energy, estimator=g.estimator)
    per_R = [combine(pop_rows[i] for i in index[r].ravel()) for r in range(R.size)]
    rows = fp.rows(R=R, populations=np.array(per_R))
    chunk = g.chunk
    n_R, n_z, n_c, n_E = R.size, z.size, len(COMPONENTS), energy.size
    full = (n_R, n_z, len(SCENARIOS), len(MESSENGERS), n_E)
    comp = (n_R, n_z, n_c, len(SCENARIOS), len(MESSENGERS), n_E)
    dims5, dims6 = _DIMS5, _DIMS6
    template = xr.Dataset(
        {
            "emissivity": (dims5, placeholder(full, (chunk,) + full[1:])),
            "emissivity_stderr": (dims5, placeholder(full, (chunk,) + full[1:])),
            "emissivity_component": (dims6, placeholder(comp, (chunk,) + comp[1:])),
            "luminosity_mean": (dims6, placeholder(comp, (chunk,) + comp[1:])),
            "luminosity_mean_stderr": (dims6, placeholder(comp, (chunk,) + comp[1:])),
            "n_stars": (("R", "z"), placeholder((n_R, n_z), (chunk, n_z))),
            "n_stars_component": (("R", "z", "component"), placeholder((n_R, n_z, n_c), (chunk, n_z, n_c))),
        },
        coords={
            "R": R,
            "z": z,
            "component": list(COMPONENTS),
            "scenario": list(SCENARIOS),
            "messenger": list(MESSENGERS),
            "energy": energy,
        },
    )
    clipped = _clipped_share(g, R, z, index, pop.clipped_fraction.values)
    attrs = {
        "config": {"galaxy": g.model_dump(mode="json")},
        "stars_per_population": int(pop.attrs.get("stars_per_population", g.stars_per_population)),
        "clipped_fraction": clipped,
    }
    notes = []
    if any(v > 0 for v in clipped.values()):
        notes.append(
            "Z clipped to the template library's range for "
            + ", ".join(f"{100 * v:.3g}% of {c}" for c, v in clipped.items())
            + " stars (weighted over the Galaxy; per population in population.clipped_fraction)"
        )
    return StagePlan(
        template=template,
        chunk=chunk,
        row_fingerprints=rows,
        attrs=attrs,
        payload=EmissivityPayload(
            store=str(store), galaxy=g, R=R, z=z, index=index, yields_key=yields_fp, population_rows=tuple(pop_rows)
        ),
        notes=notes,
    )


STAGE = Stage(
    name="emissivity",
    code_version=CODE_VERSION,
    inputs=("yields", "population"),
    schema=SCHEMA,
    payload=EmissivityPayload,
    compute=compute,
    plan=plan,
    rank=50,
)
