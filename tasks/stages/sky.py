"""The ``sky`` stage: all-sky HEALPix maps of the intensity, chunked along ``pixel`` (docs/physics.md P7).

I(l, b, E) = (1 / 4 pi) integral n_c(R, z) L_bar_c(R, z, E) ds summed over the Galactic
components c.  The densities n_c are evaluated analytically at every quadrature node (so the
thin disk's exponential profile and the bulge's cusp are exact, not interpolated); L_bar_c,
which varies slowly (for the thin disk, with the metallicity gradient in R), is interpolated
linearly on the emissivity grid.  The geometry is therefore a small linear operator per
component, computed once per pixel block and applied to every energy, scenario and
messenger at once:

* bulge, bulge_young, thick: one column per pixel (L_bar_c is the same everywhere);
* thin: a (pixels x R nodes) matrix, or (pixels x cells) sparse when ``feh_z_slope`` != 0.

The Monte Carlo error is propagated the same way: linearly within the thin disk (its
populations share their random numbers) and in quadrature between components (independent
streams).  HEALPix RING ordering, Galactic frame; fingerprints are per chunk (pixels of a
map share every input but their direction).

The operators of each chunk are kept in the store's cache (``_cache/sky_operator/``, float64
npz, ~1 kB per pixel at paper scale: 121 R nodes), keyed by the geometry alone
(:func:`operator_key`): a rerun after a change of L_bar only (the yields, the Monte Carlo
sample) is one matrix product per block, and gives the same numbers bit for bit.  The cache of a
map grows with its pixels (nside 1024: ~12.5 GB), so a map whose operators would exceed
``sky.operator_cache_gb`` (:func:`map_operator_bytes`) is not cached: its chunks integrate their
rays on every run, with the same numbers.  A chunk holds ``sky.chunk`` pixels whatever nside,
so a worker's memory does not grow with the map.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from cube import store as cstore
from cube.axes import ENERGY, MESSENGER, MESSENGERS, SCENARIO, SCENARIOS
from cube.fingerprint import Fingerprinter, digest
from cube.schema import GroupSchema, VarSpec, freeze
from tasks.kernels.galaxy import COMPONENTS, PC_CM, component_densities, density_parameters
from tasks.kernels.los import KPC_CM, interp_weights, nodes_per_ray, ray_nodes
from tasks.stages.base import MissingInputError, NotPreparedError, Stage, StagePlan, placeholder, upstream_fingerprint

__all__ = [
    "STAGE",
    "SCHEMA",
    "SkyPayload",
    "plan",
    "prepare",
    "compute",
    "galaxy_intensity",
    "cached_intensity",
    "operator_blocks",
    "apply_operators",
    "operator_key",
    "sky_entry",
    "region_entry",
    "operator_shapes",
    "map_operator_bytes",
    "stack_blocks",
    "split_blocks",
    "operator_arrays",
    "read_operators",
    "operators_found",
    "map_compressors",
    "emissivity_inputs",
    "lbar_operands",
    "component_modes",
    "los_payload",
]

CODE_VERSION = "sky/1 gl-los analytic-density"
#: Layout of the cached line-of-sight operators (:func:`operator_arrays`); part of their key.
OPERATOR_VERSION = "los-operator/1 float64 per chunk"

_MAP_DIMS = ("pixel", "scenario", "messenger", "energy")
_UNITS = "TeV^-1 cm^-2 s^-1 sr^-1"

SCHEMA = GroupSchema(
    name="sky",
    dims=("pixel", "component", "scenario", "messenger", "energy"),
    chunk_dim="pixel",
    data_vars=freeze(
        {
            "intensity": VarSpec(_MAP_DIMS, _UNITS, "diffuse intensity"),
            "intensity_stderr": VarSpec(_MAP_DIMS, _UNITS, "Monte Carlo standard error of the diffuse intensity"),
            "intensity_component": VarSpec(
                ("pixel", "component", "scenario", "messenger", "energy"),
                _UNITS,
                "diffuse intensity of each Galactic component (sky.components: true)",
            ),
        }
    ),
    coords=freeze(
        {
            "pixel": VarSpec(("pixel",), "", "HEALPix RING index, Galactic frame"),
            "l": VarSpec(("pixel",), "deg", "Galactic longitude of the pixel centre"),
            "b": VarSpec(("pixel",), "deg", "Galactic latitude of the pixel centre"),
            "component": VarSpec(("component",), "", "Galactic component"),
            "scenario": SCENARIO,
            "messenger": MESSENGER,
            "energy": ENERGY,
        }
    ),
    required_attrs=("config", "code_version", "nside", "ordering", "coordsys"),
    optional=("intensity_component", "component"),
)


@dataclass(frozen=True, eq=False)
class SkyPayload:
    """What a sky chunk needs.

    Attributes
    ----------
    los : dict
        Line-of-sight inputs of :func:`galaxy_intensity` (:func:`los_payload`): the store,
        the emissivity cube's fingerprint, the Galaxy section, observer height [kpc], steps,
        component modes, the CMB absorption per energy [kpc^-1] or ``None``, and the key of
        the cached operators (:func:`operator_key`) or ``None``.
    nside : int
        HEALPix resolution (RING ordering).
    components : bool
        Also write the map of each Galactic component.
    centres : str, optional
        The ``(2, 12 nside^2)`` array of pixel centres (l, b) [deg] :func:`prepare` cached
        (read memory-mapped, one chunk's rows at a time); without it, or if it is gone, a
        chunk asks healpy (whose import, with matplotlib's, is ~1 s of a worker's first chunk).
    """

    los: dict
    nside: int
    components: bool
    centres: str | None = None


BLOCK = 1024  # rays per block: bounds memory (steps x BLOCK x a few arrays)

_LBAR_CACHE: dict = {}


def component_modes(galaxy) -> dict[str, str]:
    """How L_bar of each component varies on the grid: ``const``, ``R`` or ``Rz``."""
    thin = "Rz" if galaxy.thin.feh_z_slope != 0 else "R"
    return {c: (thin if c == "thin" else "const") for c in COMPONENTS}


def emissivity_inputs(store, key: str, modes: dict[str, str]) -> dict:
    """L_bar_c and its standard error from the emissivity cube, in the shape each mode needs.

    Read once per worker process (cached by the emissivity cube's fingerprint ``key``): the two
    variables used, and without a ``Rz`` mode only the plane z = 0, all :func:`lbar_operands`
    takes from the other heights (at paper scale 316 of the cube's 553 MB decompressed, 3 MB kept).
    """
    got = _LBAR_CACHE.get(key)
    if got is not None:
        return got
    e = cstore.open_group_if_exists(store, "emissivity", dask=False)
    if e is None:
        raise MissingInputError("run the emissivity stage first")
    z = e.z.values
    rows = slice(None) if "Rz" in modes.values() else slice(0, 1)
    e = e[["luminosity_mean", "luminosity_mean_stderr"]].isel(z=rows).load()
    dims = ("R", "z", "scenario", "messenger", "energy")
    L = {c: e.luminosity_mean.sel(component=c).transpose(*dims).values for c in COMPONENTS}
    S = {c: e.luminosity_mean_stderr.sel(component=c).transpose(*dims).values for c in COMPONENTS}
    out = lbar_operands(e.R.values, z, e.energy.values, L, S, modes)
    _LBAR_CACHE.clear()
    _LBAR_CACHE[key] = out
    return out


def lbar_operands(R, z, energy, L: dict, S: dict, modes: dict[str, str]) -> dict:
    """L_bar_c and its error in the shape :func:`galaxy_intensity` takes for each component's mode.

    Parameters
    ----------
    R, z : (n_R,), (n_z,) the emissivity grid [kpc].
    energy : (n_E,) [TeV], carried along.
    L, S : dict component -> (n_R, n_z, ...) mean luminosity per star and its standard error
        [TeV^-1 s^-1]; the trailing axes are flattened into the operator's columns.
    modes : dict component -> ``const``, ``R`` or ``Rz`` (:func:`component_modes`).
    """
    out = {"R": np.asarray(R), "z": np.asarray(z), "energy": np.asarray(energy)}
    flat = lambda a: np.asarray(a).reshape(a.shape[0], a.shape[1], -1)  # noqa: E731
    for c in COMPONENTS:
        Lc, Sc = flat(L[c]), flat(S[c])
        if modes[c] == "const":  # one node: the operator is a column, L_bar a row
            out[c] = (Lc[0, :1], Sc[0, :1])
        elif modes[c] == "R":
            out[c] = (Lc[:, 0], Sc[:, 0])
        else:
            n = Lc.shape[0] * Lc.shape[1]
            out[c] = (Lc.reshape(n, -1), Sc.reshape(n, -1))
    return out


def galaxy_intensity(l_deg, b_deg, payload: dict, lbar: dict, per_component: bool = False):
    """Intensity, its Monte Carlo error and optionally per-component maps for directions (l, b).

    Returns arrays (n, n_scenario * n_messenger * n_E) [TeV^-1 cm^-2 s^-1 sr^-1] in
    (scenario, messenger, energy) order (:mod:`cube.axes`): ``I``, ``err`` and, if asked,
    ``I_c`` of shape (n, n_components, n_scenario * n_messenger * n_E).
    """
    from threadpoolctl import threadpool_limits

    l_deg, b_deg = np.asarray(l_deg, float), np.asarray(b_deg, float)
    with threadpool_limits(limits=1, user_api="blas"):  # the same sums in every process
        blocks = operator_blocks(l_deg, b_deg, payload, lbar["R"], lbar["z"])
        return apply_operators(blocks, len(l_deg), lbar, per_component)


def cached_intensity(l_deg, b_deg, payload: dict, lbar: dict, entry: Path | None, per_component: bool = False):
    """:func:`galaxy_intensity` through the store's cache of the directions' operators.

    ``entry`` is the cache file of these directions (:func:`sky_entry`, :func:`region_entry`),
    ``None`` where the operators are not cached (:func:`operator_key`).  A readable entry
    replaces the line-of-sight integration by one matrix product per block; otherwise the
    operators are built as :func:`galaxy_intensity` builds them, applied, and written to
    ``entry``.  Both apply the same float64 operators to the same blocks of rays, so the
    result does not depend on whether the entry existed.
    """
    if entry is None:
        return galaxy_intensity(l_deg, b_deg, payload, lbar, per_component)
    from threadpoolctl import threadpool_limits

    l_deg, b_deg = np.asarray(l_deg, float), np.asarray(b_deg, float)
    n = len(l_deg)
    shapes = operator_shapes(payload["modes"], len(lbar["R"]), len(lbar["z"]))
    with threadpool_limits(limits=1, user_api="blas"):
        ops = read_operators(entry, n, shapes)
        if ops is None:
            ops = stack_blocks(list(operator_blocks(l_deg, b_deg, payload, lbar["R"], lbar["z"])))
            cstore.write_atomic(entry, lambda tmp: np.savez(tmp, **operator_arrays(ops, entry.stem)))
        return apply_operators(split_blocks(ops, n), n, lbar, per_component)


def operator_blocks(l_deg: np.ndarray, b_deg: np.ndarray, payload: dict, R_grid: np.ndarray, z_grid: np.ndarray):
    """Line-of-sight operators of the directions (l, b) [deg], one block of at most :data:`BLOCK` rays at a time.

    Yields ``(rows, ops, attenuated)``: the slice of the directions, ``{component: operator}``
    with operators (rays x L_bar nodes) in [stars cm^-2 sr^-1 per star-luminosity unit], i.e.
    I_c = ops[c] @ L_bar_c, and ``{component: [(energy index, operator), ...]}``, the operators
    with exp(-kappa(E) s) of the attenuated energies (empty without ``kappa``).  A generator,
    so a caller that does not keep the blocks holds one block's rays at a time.
    """
    g = payload["galaxy"]
    kappa = payload.get("kappa")
    unit = KPC_CM / (4.0 * np.pi) / g.mean_stellar_mass / PC_CM**3  # w [kpc], n [Msun pc^-3]
    for s0 in range(0, len(l_deg), BLOCK):
        sl = slice(s0, min(s0 + BLOCK, len(l_deg)))
        rays = ray_nodes(l_deg[sl], b_deg[sl], g.R_sun, payload["z_obs"], g.R_max, g.z_max, payload["steps"])
        zabs = np.abs(rays.z)
        dens = component_densities(rays.R, zabs, g)
        geom = _Geometry(rays, zabs, R_grid, z_grid)
        ops, attenuated = {}, {}
        for c in COMPONENTS:
            wn = rays.w * dens[c] * unit  # (m, nodes)
            mode = payload["modes"][c]
            ops[c] = geom.operator(wn, mode)
            if kappa is not None:
                hit = np.flatnonzero(kappa * rays.length.max() > 1e-9)
                attenuated[c] = [(j, geom.operator(wn * np.exp(-kappa[j] * rays.s), mode)) for j in hit]
        yield sl, ops, attenuated


def apply_operators(blocks, n: int, lbar: dict, per_component: bool = False):
    """I = sum_c A_c L_bar_c and its Monte Carlo error from the blocks of :func:`operator_blocks`.

    The error of a component is A_c S_c (the thin disk's populations share their random
    numbers: errors add linearly), and components add in quadrature (independent streams),
    so each component keeps its own operator.  Returns ``I``, ``err`` and optionally ``I_c``
    as :func:`galaxy_intensity`.
    """
    from tasks.kernels.mapsum import add_dense, add_outer

    k = lbar[COMPONENTS[0]][0].shape[-1]
    # The components are summed as they come, in the order I_c.sum(axis=1) adds them
    # (((c0 + c1) + c2) + ...), so the map is the same to the bit without a (rays x components
    # x columns) array (200 MB per chunk at paper scale); add_outer/add_dense do each
    # component's sum and squared error in one pass over the block.
    I_c = np.zeros((n, len(COMPONENTS), k)) if per_component else None
    I = np.empty((n, k))
    var = np.empty((n, k))
    g, n_E = MESSENGERS.index("gamma"), len(lbar["energy"])
    for sl, ops, attenuated in blocks:
        I_b, var_b = I[sl], var[sl]
        for ci, c in enumerate(COMPONENTS):
            L, S = lbar[c]  # (L_bar nodes, columns)
            A = ops[c]
            if L.shape[0] == 1 and isinstance(A, np.ndarray) and not attenuated.get(c) and not per_component:
                add_outer(I_b, var_b, A[:, 0], L[0], S[0], ci == 0)  # a column times a row: no (rays x columns) product
                continue
            part = A @ L
            err = A @ S
            for j, A_j in attenuated.get(c, ()):
                cols = [(a * len(MESSENGERS) + g) * n_E + j for a in range(len(SCENARIOS))]  # (scenario a, gamma, energy j)
                part[:, cols] = A_j @ L[:, cols]
                err[:, cols] = A_j @ S[:, cols]
            if per_component:
                I_c[sl, ci] = part
            add_dense(I_b, var_b, part, err, ci == 0)
    np.sqrt(var, out=var)
    return (I, var, I_c) if per_component else (I, var)


class _Geometry:
    """Where the nodes of a block of rays sit on the emissivity grid (interpolation weights), computed once."""

    def __init__(self, rays, zabs, R_grid, z_grid) -> None:
        self.m, nodes = rays.R.shape
        self.rows = np.repeat(np.arange(self.m), nodes)
        self.i, self.t = interp_weights(rays.R, R_grid)
        self._zabs, self._z_grid = zabs, z_grid
        self.nR, self.nz = len(R_grid), len(z_grid)

    def operator(self, wn: np.ndarray, mode: str):
        """The (rays x L_bar nodes) operator of one component from node weights ``wn`` (w n_c)."""
        m, i, t, rows = self.m, self.i, self.t, self.rows
        if mode == "const":
            return wn.sum(axis=1)[:, None]
        if mode == "R":
            nR = self.nR
            A = np.bincount(rows * nR + i.ravel(), weights=(wn * (1 - t)).ravel(), minlength=m * nR)
            A += np.bincount(rows * nR + i.ravel() + 1, weights=(wn * t).ravel(), minlength=m * nR)
            return A.reshape(m, nR)
        from scipy.sparse import csr_matrix

        j, u = interp_weights(self._zabs, self._z_grid)  # only when L_bar varies with z
        nz = self.nz
        data, cols = [], []
        for di, wi in ((0, 1 - t), (1, t)):
            for dj, wj in ((0, 1 - u), (1, u)):
                data.append((wn * wi * wj).ravel())
                cols.append(((i + di) * nz + (j + dj)).ravel())
        return csr_matrix((np.concatenate(data), (np.tile(rows, 4), np.concatenate(cols))), shape=(m, self.nR * nz))


# --- the operators as derived inputs in the store's cache (issue #17) ---
#
# Once the geometry is fixed, I = A @ L_bar: a change of the yields (mirroring, cross sections)
# only needs the product.  The attenuated operators are not cached: they depend on the energy
# grid and there is one per attenuated energy and component, i.e. up to n_E times the cache of
# the plain operators (tens of GB at paper scale); with ``sky.cmb_attenuation`` the stages
# integrate along the rays as before (:func:`operator_key` is ``None``).


def operator_key(config, R_grid: np.ndarray, z_grid: np.ndarray) -> str | None:
    """Fingerprint of everything the line-of-sight operators depend on but the directions, or ``None``.

    The observer, the Galaxy's extent and densities (with the mean stellar mass), the nodes
    per ray, the component modes, the emissivity's (R, z) grid [kpc] and the sky code
    version; not L_bar, the yields or the energy grid.  ``None`` (not cached) with
    ``sky.cmb_attenuation``.
    """
    settings = los_settings(config)
    if settings.pop("cmb_attenuation"):
        return None
    grid = {"R": np.asarray(R_grid, float), "z": np.asarray(z_grid, float)}
    return digest({"code": CODE_VERSION, "operator": OPERATOR_VERSION, "los": settings, "grid": grid})


def sky_entry(los: dict, nside: int, start: int, stop: int) -> Path | None:
    """The cache file of the operators of pixels ``[start, stop)`` at ``nside``, or ``None`` if not cached."""
    key = los.get("operator_key")
    if key is None:
        return None
    name = digest({"operator": key, "nside": nside, "pixels": [start, stop]})
    return cstore.cache_path(los["store"], "sky_operator", f"{name}.npz")


def region_entry(los: dict, boxes, dl: float, nb: int) -> Path | None:
    """The cache file of the operators of a region's quadrature nodes (boxes [deg], ``dl`` [deg], ``nb``), or ``None``."""
    key = los.get("operator_key")
    if key is None:
        return None
    name = digest({"operator": key, "boxes": [list(map(float, b)) for b in boxes], "dl": float(dl), "nb": int(nb)})
    return cstore.cache_path(los["store"], "sed_operator", f"{name}.npz")


def operator_shapes(modes: dict[str, str], n_R: int, n_z: int) -> dict[str, tuple[str, int]]:
    """``{component: (mode, L_bar nodes)}``: what a stored operator of each component must look like."""
    return {c: (m, {"const": 1, "R": n_R, "Rz": n_R * n_z}[m]) for c, m in modes.items()}


def map_operator_bytes(modes: dict[str, str], n_R: int, n_z: int, steps: int, n_pix: int) -> int:
    """Bytes [B] the cached operators of ``n_pix`` directions take (what :func:`operator_arrays` stores).

    Dense columns are float64 (8 B per pixel and L_bar node); a sparse ``Rz`` operator is
    counted at its most, every node of a ray in its own 4 cells up to the n_R n_z cells
    (float64 value and int32 index per entry, int32 row pointer): an upper bound.
    ``steps`` is ``sky.steps`` (rounded up to whole Gauss-Legendre segments as the rays are).
    """
    nodes = nodes_per_ray(steps)
    per_pixel = 0
    for mode, cols in operator_shapes(modes, n_R, n_z).values():
        per_pixel += 12 * min(cols, 4 * nodes) + 4 if mode == "Rz" else 8 * cols
    return int(n_pix) * per_pixel


def stack_blocks(blocks: list) -> dict:
    """The operators of all directions, ``{component: operator}``, from :func:`operator_blocks` without attenuation."""
    from scipy.sparse import issparse, vstack

    out = {}
    for c in COMPONENTS:
        parts = [ops[c] for _, ops, _ in blocks]
        out[c] = vstack(parts, format="csr") if parts and issparse(parts[0]) else np.concatenate(parts)
    return out


def split_blocks(ops: dict, n: int):
    """The blocks :func:`apply_operators` takes from stacked operators: the rays of :func:`operator_blocks`'s blocks."""
    for s0 in range(0, n, BLOCK):
        sl = slice(s0, min(s0 + BLOCK, n))
        yield sl, {c: A[sl] for c, A in ops.items()}, {}


def operator_arrays(ops: dict, key: str) -> dict[str, np.ndarray]:
    """Plain float64/int64 arrays of stacked operators (a sparse one as CSR parts) and their key, for ``np.savez``."""
    from scipy.sparse import issparse

    out = {"key": np.array(key)}
    for c, A in ops.items():
        if issparse(A):
            out.update({f"{c}.data": A.data, f"{c}.indices": A.indices, f"{c}.indptr": A.indptr,
                        f"{c}.shape": np.array(A.shape)})
        else:
            out[c] = A
    return out


def read_operators(path: Path, n: int, shapes: dict[str, tuple[str, int]]) -> dict | None:
    """Stacked operators from a cache file, or ``None`` if absent, unreadable or not what ``path`` names.

    The store may sit on a shared file system that others can write to, so an entry is never
    unpickled (``allow_pickle=False`` refuses object arrays), and one that cannot be read as
    plain arrays of the expected key and shapes (``n`` directions, :func:`operator_shapes`)
    is rebuilt with a warning.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != path.stem:
                raise ValueError(f"the entry holds the operators of {data['key']}")
            ops = {c: _stored_operator(data, c, mode, (n, cols)) for c, (mode, cols) in shapes.items()}
    except Exception as exc:  # noqa: BLE001 - any unreadable entry is rebuilt, never executed
        warnings.warn(f"ignoring unreadable operator cache {path} ({type(exc).__name__}: {exc}); recomputing it", stacklevel=2)
        return None
    return ops


def _stored_operator(data, c: str, mode: str, shape: tuple[int, int]):
    if mode == "Rz":
        from scipy.sparse import csr_matrix

        if tuple(data[f"{c}.shape"]) != shape:
            raise ValueError(f"{c}: shape {tuple(data[f'{c}.shape'])}, expected {shape}")
        A = csr_matrix((data[f"{c}.data"], data[f"{c}.indices"], data[f"{c}.indptr"]), shape=shape)
        A.check_format(full_check=True)
    else:
        A = data[c]
        if A.shape != shape:
            raise ValueError(f"{c}: shape {A.shape}, expected {shape}")
    if A.dtype != np.float64:
        raise ValueError(f"{c}: dtype {A.dtype}, expected float64")
    return A


def _pixel_centres(nside: int, start: int, stop: int, cached: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(l, b) [deg] of RING pixels ``[start, stop)``: from :func:`prepare`'s cache, else from healpy."""
    if cached is not None:
        lb = _read_centres(Path(cached), nside, mmap=True)
        if lb is not None:
            return np.array(lb[0][start:stop]), np.array(lb[1][start:stop])
    import healpy as hp

    return hp.pix2ang(nside, np.arange(start, stop), lonlat=True)


def compute(start: int, stop: int, payload: SkyPayload) -> xr.Dataset:
    """Intensity maps of pixels ``[start, stop)`` [TeV^-1 cm^-2 s^-1 sr^-1]."""
    los = payload.los
    lbar = emissivity_inputs(los["store"], los["emissivity_key"], los["modes"])
    pix = np.arange(start, stop)
    l, b = _pixel_centres(payload.nside, start, stop, payload.centres)
    n_E = len(lbar["energy"])
    shape = (stop - start, len(SCENARIOS), len(MESSENGERS), n_E)
    entry = sky_entry(los, payload.nside, start, stop)
    res = cached_intensity(l, b, los, lbar, entry, per_component=payload.components)
    data = {"intensity": (_MAP_DIMS, res[0].reshape(shape)), "intensity_stderr": (_MAP_DIMS, res[1].reshape(shape))}
    if payload.components:
        data["intensity_component"] = (
            ("pixel", "component", *_MAP_DIMS[1:]),
            res[2].reshape((stop - start, len(COMPONENTS), *shape[1:])),
        )
    return xr.Dataset(data, coords={"pixel": pix})


def upstream_key(store) -> str:
    """Fingerprint of the whole emissivity cube (what every sky and sed chunk reads)."""
    if cstore.open_group_if_exists(store, "emissivity", dask=False) is None:
        raise MissingInputError("run the emissivity stage first")
    return upstream_fingerprint(store, "emissivity")


def los_settings(config) -> dict:
    """Everything a line of sight depends on besides the emissivity cube."""
    g, s = config.galaxy, config.sky
    return {
        "R_sun": g.R_sun,
        "z_obs": s.z_observer,
        "R_max": g.R_max,
        "z_max": g.z_max,
        "steps": s.steps,
        "cmb_attenuation": s.cmb_attenuation,
        "modes": component_modes(g),
        "density": density_parameters(g),
    }


def los_payload(config, store, key: str, emissivity: xr.Dataset) -> dict:
    """What :func:`cached_intensity` needs on a worker: the same for sky maps and region spectra.

    ``emissivity`` is the emissivity cube (its energy and (R, z) grid are read).
    """
    settings = los_settings(config)
    return {
        "store": str(store),
        "emissivity_key": key,
        "galaxy": config.galaxy,
        "kappa": _kappa(config, emissivity.energy.values),
        "operator_key": operator_key(config, emissivity.R.values, emissivity.z.values),
        **{k: settings[k] for k in ("z_obs", "steps", "modes")},
    }


def _kappa(config, energy: np.ndarray) -> np.ndarray | None:
    """CMB absorption coefficient per energy [kpc^-1] when ``sky.cmb_attenuation`` is on, else ``None``."""
    if not config.sky.cmb_attenuation:
        return None
    from tasks.kernels.cmb import absorption_per_kpc

    return absorption_per_kpc(energy)


def _centres_path(store, nside: int):
    return cstore.cache_path(store, "healpix", f"ring-nside{nside}.npy")


def prepare(config, store, client=None) -> None:
    """Cache the pixel centres (l, b) [deg] of ``sky.nside`` (healpy, which imports matplotlib and astropy).

    Called by the runner when the stage runs, never by ``status``.
    """
    nside = config.sky.nside
    path = _centres_path(store, nside)
    if _read_centres(path, nside, mmap=True) is None:
        import healpy as hp

        lb = np.stack(hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), lonlat=True))
        cstore.write_atomic(path, lambda tmp: np.save(tmp, lb, allow_pickle=False))


def _read_centres(path, nside: int, mmap: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (l, b) [deg] of every RING pixel of ``nside``, or ``None`` if absent or unreadable."""
    try:
        lb = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except Exception:  # noqa: BLE001 - a missing or unreadable entry is rebuilt by prepare
        return None
    return (lb[0], lb[1]) if lb.shape == (2, 12 * nside**2) and lb.dtype == np.float64 else None


def plan(config, store, client=None) -> StagePlan:
    """Template (pixels with l, b from :func:`prepare`'s cache), chunk fingerprints and the payload."""
    s = config.sky
    key = upstream_key(store)
    e = cstore.open_group_if_exists(store, "emissivity", dask=False)
    energy = e.energy.values
    centres = _read_centres(_centres_path(store, s.nside), s.nside)
    if centres is None:
        raise NotPreparedError(f"the pixel centres of nside {s.nside} are not computed yet")
    l, b = centres
    n_pix = l.size
    pix = np.arange(n_pix)
    chunk = min(s.chunk, n_pix)
    full = (n_pix, len(SCENARIOS), len(MESSENGERS), energy.size)
    data = {
        "intensity": (_MAP_DIMS, placeholder(full, (chunk,) + full[1:])),
        "intensity_stderr": (_MAP_DIMS, placeholder(full, (chunk,) + full[1:])),
    }
    coords = {
        "pixel": pix,
        "l": ("pixel", l),
        "b": ("pixel", b),
        "scenario": list(SCENARIOS),
        "messenger": list(MESSENGERS),
        "energy": energy,
    }
    if s.components:
        comp = (n_pix, len(COMPONENTS), *full[1:])
        data["intensity_component"] = (("pixel", "component", *_MAP_DIMS[1:]), placeholder(comp, (chunk,) + comp[1:]))
        coords["component"] = list(COMPONENTS)
    template = xr.Dataset(data, coords=coords)
    for v in template.data_vars.values():
        v.encoding["compressors"] = map_compressors()
    settings = los_settings(config)
    fp = Fingerprinter(code=CODE_VERSION, emissivity=key, los=settings, nside=s.nside, components=s.components)
    los = los_payload(config, store, key, e)
    notes = [f"nside {s.nside}: {n_pix} pixels x {s.steps} nodes per line of sight"]
    size = map_operator_bytes(los["modes"], e.R.size, e.z.size, s.steps, n_pix)
    if los["operator_key"] is not None and size > s.operator_cache_gb * 1e9:
        los = {**los, "operator_key": None}
        notes.append(
            f"line-of-sight operators not cached: {size / 1e9:.3g} GB > sky.operator_cache_gb = {s.operator_cache_gb:g}"
        )
    return StagePlan(
        template=template,
        chunk=chunk,
        row_fingerprints=None,
        chunk_fingerprint=fp.chunk,
        attrs={
            # operator_cache_gb changes no number: a cube's recorded configuration does not hold it
            "config": {"sky": s.model_dump(mode="json", exclude={"regions", "operator_cache_gb"}), "los": settings},
            "nside": s.nside,
            "ordering": "RING",
            "coordsys": "G",
        },
        payload=SkyPayload(los=los, nside=s.nside, components=s.components, centres=str(_centres_path(store, s.nside).resolve())),
        notes=notes,
        describe=operators_found([sky_entry(los, s.nside, a, min(a + chunk, n_pix)) for a in range(0, n_pix, chunk)], chunk),
    )


def map_compressors() -> tuple:
    """The codec of the map variables: blosc lz4, byte shuffle of the float64 values (typesize 8).

    Float64 maps with full mantissas compress little whatever the codec; on paper-scale
    chunks (12,288 pixels x 404 columns, 40 MB) this one stores them in 1/1.45 of their size
    (zarr's default zstd: 1/1.40) and compresses about 3x, decompresses about 2x faster
    (benchmarks/RESULTS.md, "Sky and sed on a yields-only change").  A group built with
    another codec keeps it: chunks are rewritten with the group's own codec.
    """
    from zarr.codecs import BloscCodec

    return (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=8),)


def operators_found(entries: list[Path | None], chunk: int) -> Callable[[list], dict]:
    """The ``describe`` of a plan: how many computed chunks find their operators in the cache.

    ``entries`` are the cache files of the chunks, in order, looked up now (when planned, as
    the chunks run after); an entry that turns out unreadable is counted but rebuilt (with a
    warning) by its chunk.
    """
    found = {i * chunk for i, p in enumerate(entries) if p is not None and p.is_file()}

    def describe(computed) -> dict:
        return {"los_operators_cached": sum(k.start in found for k in computed)}

    return describe


def warm(on_workers: bool) -> None:
    """Workers: the map sums' compiled kernels' module; client: healpy (with matplotlib, ~1 s), for :func:`prepare`."""
    if on_workers:
        from tasks.kernels import mapsum  # noqa: F401
    else:
        import healpy  # noqa: F401


STAGE = Stage(
    name="sky",
    code_version=CODE_VERSION,
    inputs=("emissivity",),
    schema=SCHEMA,
    payload=SkyPayload,
    compute=compute,
    plan=plan,
    prepare=prepare,
    rank=60,
    warm=warm,
)
