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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from cube import store as cstore
from cube.axes import ENERGY, MESSENGER, MESSENGERS, SCENARIO, SCENARIOS
from cube.fingerprint import Fingerprinter
from cube.schema import GroupSchema, VarSpec, freeze
from tasks.kernels.galaxy import COMPONENTS, PC_CM, component_densities, density_parameters
from tasks.kernels.los import KPC_CM, interp_weights, ray_nodes
from tasks.stages.base import MissingInputError, NotPreparedError, Stage, StagePlan, placeholder, upstream_fingerprint

__all__ = [
    "STAGE",
    "SCHEMA",
    "SkyPayload",
    "plan",
    "prepare",
    "compute",
    "galaxy_intensity",
    "emissivity_inputs",
    "lbar_operands",
    "component_modes",
    "los_payload",
]

CODE_VERSION = "sky/1 gl-los analytic-density"

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
        component modes and the CMB absorption per energy [kpc^-1] or ``None``.
    nside : int
        HEALPix resolution (RING ordering).
    components : bool
        Also write the map of each Galactic component.
    """

    los: dict
    nside: int
    components: bool


BLOCK = 1024  # rays per block: bounds memory (steps x BLOCK x a few arrays)

_LBAR_CACHE: dict = {}


def component_modes(galaxy) -> dict[str, str]:
    """How L_bar of each component varies on the grid: ``const``, ``R`` or ``Rz``."""
    thin = "Rz" if galaxy.thin.feh_z_slope != 0 else "R"
    return {c: (thin if c == "thin" else "const") for c in COMPONENTS}


def emissivity_inputs(store, key: str, modes: dict[str, str]) -> dict:
    """L_bar_c and its standard error from the emissivity cube, in the shape each mode needs.

    Read once per worker process (cached by the emissivity cube's fingerprint ``key``).
    """
    got = _LBAR_CACHE.get(key)
    if got is not None:
        return got
    e = cstore.read_rows(store, "emissivity", "R", slice(None))
    dims = ("R", "z", "scenario", "messenger", "energy")
    L = {c: e.luminosity_mean.sel(component=c).transpose(*dims).values for c in COMPONENTS}
    S = {c: e.luminosity_mean_stderr.sel(component=c).transpose(*dims).values for c in COMPONENTS}
    out = lbar_operands(e.R.values, e.z.values, e.energy.values, L, S, modes)
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

    with threadpool_limits(limits=1, user_api="blas"):  # the same sums in every process
        return _galaxy_intensity(np.asarray(l_deg, float), np.asarray(b_deg, float), payload, lbar, per_component)


def _galaxy_intensity(l_deg, b_deg, payload, lbar, per_component):
    g = payload["galaxy"]
    R_grid, z_grid = lbar["R"], lbar["z"]
    n = len(l_deg)
    k = lbar[COMPONENTS[0]][0].shape[-1]
    I_c = np.zeros((n, len(COMPONENTS), k))
    var = np.zeros((n, k))
    for s0 in range(0, n, BLOCK):
        sl = slice(s0, min(s0 + BLOCK, n))
        rays = ray_nodes(l_deg[sl], b_deg[sl], g.R_sun, payload["z_obs"], g.R_max, g.z_max, payload["steps"])
        zabs = np.abs(rays.z)
        dens = component_densities(rays.R, zabs, g)
        geom = _Geometry(rays, zabs, R_grid, z_grid)
        unit = KPC_CM / (4.0 * np.pi) / g.mean_stellar_mass / PC_CM**3  # w [kpc], n [Msun pc^-3]
        for ci, c in enumerate(COMPONENTS):
            L, S = lbar[c]  # (L_bar nodes, columns)
            wn = rays.w * dens[c] * unit  # (m, nodes)
            mode = payload["modes"][c]
            A = geom.operator(wn, mode)
            I_c[sl, ci] = A @ L
            err = A @ S  # thin populations share their random numbers: errors add linearly
            if payload.get("kappa") is not None:
                _attenuate(I_c[sl, ci], err, rays, wn, L, S, mode, payload["kappa"], geom)
            var[sl] += err**2
    I = I_c.sum(axis=1)
    return (I, np.sqrt(var), I_c) if per_component else (I, np.sqrt(var))


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


def _attenuate(I_c, err, rays, wn, L, S, mode, kappa, geom) -> None:
    """Redo the gamma-ray columns with exp(-kappa(E) s) along each ray (in place); ``kappa`` [kpc^-1] per energy."""
    n_E = kappa.size
    for j in np.flatnonzero(kappa * rays.length.max() > 1e-9):
        A = geom.operator(wn * np.exp(-kappa[j] * rays.s), mode)
        g = MESSENGERS.index("gamma")
        cols = [(a * len(MESSENGERS) + g) * n_E + j for a in range(len(SCENARIOS))]  # (scenario a, gamma, energy j)
        I_c[:, cols] = A @ L[:, cols]
        err[:, cols] = A @ S[:, cols]


def compute(start: int, stop: int, payload: SkyPayload) -> xr.Dataset:
    """Intensity maps of pixels ``[start, stop)`` [TeV^-1 cm^-2 s^-1 sr^-1]."""
    import healpy as hp

    los = payload.los
    lbar = emissivity_inputs(los["store"], los["emissivity_key"], los["modes"])
    pix = np.arange(start, stop)
    l, b = hp.pix2ang(payload.nside, pix, lonlat=True)
    n_E = len(lbar["energy"])
    shape = (stop - start, len(SCENARIOS), len(MESSENGERS), n_E)
    res = galaxy_intensity(l, b, los, lbar, per_component=payload.components)
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


def los_payload(config, store, key: str, energy: np.ndarray) -> dict:
    """What :func:`galaxy_intensity` needs on a worker: the same for sky maps and region spectra."""
    settings = los_settings(config)
    return {
        "store": str(store),
        "emissivity_key": key,
        "galaxy": config.galaxy,
        "kappa": _kappa(config, energy),
        **{k: settings[k] for k in ("z_obs", "steps", "modes")},
    }


def _kappa(config, energy: np.ndarray) -> np.ndarray | None:
    """CMB absorption coefficient per energy [kpc^-1] when ``sky.cmb_attenuation`` is on, else ``None``."""
    if not config.sky.cmb_attenuation:
        return None
    from tasks.kernels.cmb import absorption_per_kpc

    return absorption_per_kpc(energy)


def _centres_path(store, nside: int):
    return cstore.cache_path(store, "healpix", f"ring-nside{nside}.npz")


def prepare(config, store, client=None) -> None:
    """Cache the pixel centres (l, b) [deg] of ``sky.nside`` (healpy, which imports matplotlib and astropy).

    Called by the runner when the stage runs, never by ``status``.
    """
    import healpy as hp

    nside = config.sky.nside
    path = _centres_path(store, nside)
    if _read_centres(path, nside) is None:
        l, b = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), lonlat=True)
        cstore.write_atomic(path, lambda tmp: np.savez(tmp, l=l, b=b))


def _read_centres(path, nside: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            l, b = data["l"], data["b"]
    except Exception:  # noqa: BLE001 - a missing or unreadable entry is rebuilt by prepare
        return None
    return (l, b) if l.shape == b.shape == (12 * nside**2,) else None


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
    settings = los_settings(config)
    fp = Fingerprinter(code=CODE_VERSION, emissivity=key, los=settings, nside=s.nside, components=s.components)
    return StagePlan(
        template=xr.Dataset(data, coords=coords),
        chunk=chunk,
        row_fingerprints=None,
        chunk_fingerprint=fp.chunk,
        attrs={
            "config": {"sky": s.model_dump(mode="json", exclude={"regions"}), "los": settings},
            "nside": s.nside,
            "ordering": "RING",
            "coordsys": "G",
        },
        payload=SkyPayload(los=los_payload(config, store, key, energy), nside=s.nside, components=s.components),
        notes=[f"nside {s.nside}: {n_pix} pixels x {s.steps} nodes per line of sight"],
    )


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
)
