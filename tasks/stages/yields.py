"""The ``yields`` stage: gamma-ray and neutrino luminosities of every template, chunked along ``model``.

Reads the ``xsec`` and ``templates`` cubes, writes ``luminosity(model, scenario, messenger,
energy)`` in TeV^-1 s^-1 (docs/physics.md P3-P4).

A model's fingerprint holds the fingerprint of its template row, of the whole ``xsec``
cube, the CR spectrum, the interaction and quadrature settings, and, only for
main-sequence stars at or below the Kraft break (the ones the mirroring scenario touches),
the mirroring parameters and the HAWC calibration factor.  Changing ``f_B`` therefore
recomputes only chunks holding such stars; changing the CR spectrum recomputes all.

What a chunk computes is split along the physics (docs/physics.md P4): its scenario
luminosities are ``L_ball`` and ``F_sur c L_mirror + (1 - F_sur) L_ball``, where the calibration
c and the surface fraction F_sur only weight the two parts.  ``L_ball`` (no f_B, F_sur or c
in it) and the uncalibrated ``L_mirror`` are cached per chunk in the store
(``_cache/yields_ballistic``, ``_cache/yields_mirror``, npz), keyed by the fingerprints of
their own inputs, the latter including each model's f_B.  A chunk whose fingerprint changed
through the calibration, F_sur or f_B therefore reruns the mirroring kernel only for the
models whose f_B changed (f_B sits inside the trajectory integrals, B = sqrt(4 pi f_B rho)
v_conv: not a scaling) and rescales the rest.  Changing ``mirroring.f_B_high`` changes c and
the f_B of the models between ``f_B_mass_low`` and ``max_mass``; those at or below
``f_B_mass_low`` keep f_B = ``f_B_low`` and are rescaled.

The HAWC calibration (``mirroring.calibration: hawc``) is computed on the client when the
stage is planned, from the solar template (1 Msun, Z = 0.02, 4.57 Gyr), and stored in the
group attributes ``hawc_calibration`` and ``hawc_ratio_uncalibrated``.  It scales the
messengers named by ``mirroring.calibration_applies_to`` (attribute
``calibration_applies_to``): by default the gamma rays only, since the neutrinos of a star
cannot exceed its black-sphere bound (one interaction per primary, docs/physics.md P4).
``interactions.pair_absorption: false`` removes pair absorption in the star (lambda_pair = inf)
in both scenarios.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from cube import store as cstore
from cube.axes import ENERGY, MESSENGER, MESSENGERS, MODEL, MODEL_COORD_SPECS, MODEL_COORDS, SCENARIO, SCENARIOS
from cube.fingerprint import Fingerprinter, combine, digest
from cube.schema import GroupSchema, VarSpec, freeze
from tasks.stages.base import (
    MissingInputError,
    NotPreparedError,
    Stage,
    StagePlan,
    placeholder,
    upstream_fingerprint,
    upstream_rows,
)

__all__ = [
    "STAGE",
    "SCHEMA",
    "YieldsPayload",
    "plan",
    "prepare",
    "compute",
    "chunk_parts",
    "compact_coords",
    "model_rows",
    "kernel_arguments",
    "surface_parameters",
    "find_sun",
    "solar_index",
    "SUN",
    "MissingInputError",
]

# 2: the calibration scales only the messengers in mirroring.calibration_applies_to (gamma by
# default, before: both), interactions.pair_absorption can switch lambda_pair off, and invalid
# templates (no structure model) get zero luminosity
# 3: yields.dark_column (40): mirrored trajectories whose half-path column exceeds 40 lambda_pp get
# Gamma_gamma = 0 instead of an outward-leg integral below e^-40 = 4e-18
CODE_VERSION = "yields/3 ballistic+canonical-momentum-mirroring+invalid-zero calibration-per-messenger dark-column"

SCHEMA = GroupSchema(
    name="yields",
    dims=("model", "scenario", "messenger", "energy"),
    chunk_dim="model",
    data_vars=freeze(
        {
            "luminosity": VarSpec(
                ("model", "scenario", "messenger", "energy"),
                "TeV^-1 s^-1",
                "differential luminosity of secondaries emitted by the star",
            ),
        }
    ),
    coords=freeze(
        {"model": MODEL, "scenario": SCENARIO, "messenger": MESSENGER, "energy": ENERGY, **MODEL_COORD_SPECS}
    ),
)


@dataclass(frozen=True, eq=False)
class YieldsPayload:
    """What a yields chunk needs.

    Attributes
    ----------
    store : str
        The store whose templates cube the chunk reads.
    xsec : dict
        ``E_p`` [TeV], ``energy`` [TeV], ``sigma_inel`` [mb], ``dsigma`` (messenger, E_p,
        energy) [mb TeV^-1] from the xsec cube, and ``X`` (hydrogen fraction for lambda_pair).
    args : dict
        Kernel keywords from the configuration (:func:`kernel_arguments`).
    calibration : float
        Factor on L_mirror in the mirroring scenario (HAWC, fixed, or 1).
    f_B, F_sur : np.ndarray, shape (n_model,)
        Surface parameters of every model (dimensionless; 0 where mirroring does not apply).
    mirrored : np.ndarray of bool, shape (n_model,)
        Main-sequence models at or below the Kraft break (the mirroring kernel's models).
    template_rows : tuple of str
        Fingerprint of every model's template row.
    model_coords : dict
        The per-model coordinates (:data:`cube.axes.MODEL_COORDS`, ``valid`` among them) of
        every template as planned, so that a chunk reads the templates cube only for the
        profiles of models a kernel computes: name -> (levels, codes) for strings, whose
        rows are ``levels[codes]`` (a few distinct strings, up to 100 characters wide), else
        name -> (values, None).  See :func:`model_rows`.
    ballistic_key, mirror_key : str
        Fingerprints of the inputs every model's L_ball, resp. L_mirror, shares (code, cross
        sections, CR spectrum, interactions, quadrature); with ``template_rows`` (and f_B for
        L_mirror) they key the cached parts (:func:`chunk_parts`).
    """

    store: str
    xsec: dict
    args: dict
    calibration: float
    f_B: np.ndarray
    F_sur: np.ndarray
    mirrored: np.ndarray
    template_rows: tuple[str, ...]
    model_coords: dict
    ballistic_key: str
    mirror_key: str

#: The solar template used by the calibration and the report: (mass_init, Z, age [yr]).
SUN = (1.0, 0.02, 4.57e9)


def find_sun(templates: xr.Dataset) -> int | None:
    """Index of the solar template, or ``None`` if the library has none.

    The solar template is the main-sequence model of 1 Msun and Z = 0.02 closest to
    4.57 Gyr, among models whose ages bracket 4.57 Gyr (an extrapolated Sun is no Sun).
    """
    m = np.asarray(templates.mass_init.values, float)
    z = np.asarray(templates.metallicity.values, float)
    age = np.asarray(templates.age.values, float)
    stage = np.asarray(templates.stage.values).astype(str)
    cand = np.flatnonzero(np.isclose(m, SUN[0]) & np.isclose(z, SUN[1]) & (stage == "MS"))
    if cand.size == 0 or not (age[cand].min() <= SUN[2] * (1 + 1e-6) and age[cand].max() >= SUN[2] * (1 - 1e-6)):
        return None
    return int(cand[np.argmin(np.abs(age[cand] - SUN[2]))])


def _no_sun_message(config) -> str:
    t = config.templates
    what = "no solar template (a 1 Msun, Z = 0.02 main-sequence model at 4.57 Gyr)"
    if t.source == "mesa":
        fix = (
            "add to templates.mesa_logs the LOGS of a 1 Msun, Z = 0.02 MESA run whose main-sequence "
            "profiles bracket 4.57 Gyr"
        )
    else:
        fix = "add 1.0 to templates.masses, 0.02 to templates.metallicities and [1.0, 0.02, 4.57e9] to templates.extra_snapshots"
    return (
        f"mirroring.calibration is 'hawc', which scales L_mirror so that the Sun matches HAWC, but the "
        f"{t.source} template library has {what}; {fix}, or set mirroring.calibration: none, or give the "
        f"factor as a number (for example mirroring.calibration: 16.05)"
    )


def solar_index(templates: xr.Dataset) -> int:
    """Index of the solar template (1 Msun, Z = 0.02, main sequence, closest to 4.57 Gyr).

    Raises
    ------
    MissingInputError
        If the library has no such model.
    """
    sun = find_sun(templates)
    if sun is None:
        raise MissingInputError(
            "no solar template (1 Msun, Z = 0.02, main sequence, ages bracketing 4.57 Gyr) in the templates cube"
        )
    return sun


def kernel_arguments(config) -> dict:
    """Configuration values handed to :func:`tasks.kernels.luminosity.template_luminosity`."""
    cr, it, mi, y = config.cosmic_rays, config.interactions, config.mirroring, config.yields
    return {
        "N_nuc": it.nuclear_enhancement,
        "n_b": y.impact_points,
        "b_depth_min": y.impact_depth_min,
        "n_mu_b": y.mu_points,
        "n_gamma": y.gamma_points,
        "u_min": y.gamma_u_range[0],
        "u_max": y.gamma_u_range[1],
        "n_gauss": y.gauss_points,
        "saturation": y.saturation,
        "node_tol": y.node_tol,
        "dark_column": y.dark_column,
        "include_atmosphere": y.include_atmosphere,
        "m_kraft": mi.max_mass,
        "calibration_applies_to": mi.calibration_applies_to,
        "pair_absorption": it.pair_absorption,
        "surface": {
            "f_B": {"f_low": mi.f_B_low, "f_high": mi.f_B_high, "m_full": mi.f_B_mass_low, "m_sun": mi.f_B_mass_high},
            "f_struct": {"nodes": list(mi.f_struct_nodes), "levels": list(mi.f_struct_levels)},
            "f_age": {"index": -mi.spindown_index, "nodes": [list(p) for p in mi.t_sat_points]},
        },
        "cr": {"norm": cr.norm, "indices": list(cr.indices), "breaks": list(cr.breaks), "e_norm": cr.norm_energy},
    }


def surface_parameters(mass_init, age, stage, m_kraft: float, surface: dict) -> tuple[np.ndarray, np.ndarray]:
    """f_B and F_sur = min(f_struct f_age, 1) of each model from the configured surface laws (docs/physics.md P4)."""
    from tasks.kernels.surface import f_age, f_B, f_struct, is_main_sequence

    m = np.asarray(mass_init, float)
    ms = is_main_sequence(stage)
    fb = f_B(m, ms, m_kraft=m_kraft, **surface["f_B"])
    F = np.minimum(f_struct(m, **surface["f_struct"]) * f_age(age, m, **surface["f_age"]), 1.0)
    F = np.where(ms & (m <= m_kraft), F, 0.0)
    return fb, F


def _luminosity(tpl: xr.Dataset, xs: dict, args: dict, calibration: float):
    from catalogs.cr_spectrum import proton_intensity
    from tasks.kernels.luminosity import template_luminosity

    kw = dict(args)
    cr = kw.pop("cr")
    surface = kw.pop("surface")
    stage = tpl.stage.values.astype(str)
    fb, F = surface_parameters(tpl.mass_init.values, tpl.age.values, stage, kw["m_kraft"], surface)
    intensity = proton_intensity(xs["E_p"], **cr)
    return template_luminosity(
        tpl.radius.values,
        tpl.rho.values,
        tpl.v_conv.values,
        tpl.column.values,
        tpl.R_star.values,
        tpl.mass_init.values,
        tpl.age.values,
        stage,
        xs["E_p"],
        xs["sigma_inel"],
        xs["dsigma"],
        X=xs["X"],
        calibration=calibration,
        intensity=intensity,
        f_B=fb,
        F_sur=F,
        **kw,
    )


def compute(start: int, stop: int, payload: YieldsPayload) -> xr.Dataset:
    """Luminosities of models ``[start, stop)`` [TeV^-1 s^-1].

    The chunk's ``L_ball`` and uncalibrated ``L_mirror`` come from the store's cache where
    their inputs are unchanged, else from the kernels on the templates cube's profiles
    (:func:`chunk_parts`); the scenarios are then combined with the plan's F_sur and
    calibration (:func:`tasks.kernels.luminosity.combine_scenarios`).  Invalid templates
    (``valid`` False: no structure model, zero profiles) get zero luminosity without calling
    the kernels.
    """
    from tasks.kernels.luminosity import combine_scenarios

    meta = model_rows(payload.model_coords, start, stop)
    L_b, L_m = chunk_parts(start, stop, payload)
    F = payload.F_sur[start:stop]
    L = np.stack(
        [L_b, combine_scenarios(L_b, L_m, F, payload.calibration, payload.args["calibration_applies_to"])], axis=1
    )
    coords = {
        "model": np.arange(start, stop),
        "scenario": list(SCENARIOS),
        "messenger": list(MESSENGERS),
        "energy": payload.xsec["energy"],
    }
    coords.update({k: ("model", meta[k]) for k in MODEL_COORDS})
    return xr.Dataset({"luminosity": (("model", "scenario", "messenger", "energy"), L)}, coords=coords)


def compact_coords(meta: xr.Dataset) -> dict:
    """The per-model coordinates of ``meta`` in the form of ``YieldsPayload.model_coords``.

    Strings are kept as distinct values and codes: the payload goes to every worker, and a
    column like ``invalid_reason`` (100 characters, empty for nearly every model) would be
    most of it.
    """
    out = {}
    for k in MODEL_COORDS:
        v = np.asarray(meta[k].values)
        if v.dtype.kind == "U":
            levels, codes = np.unique(v, return_inverse=True)
            out[k] = (levels, codes.astype(np.int32))
        else:
            out[k] = (v, None)
    return out


def model_rows(coords: dict, start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows ``[start, stop)`` of every coordinate of :func:`compact_coords`' result (same values and dtypes)."""
    return {k: v[start:stop] if codes is None else v[codes[start:stop]] for k, (v, codes) in coords.items()}


def _kernel_inputs(xs: dict, args: dict) -> tuple[dict, dict]:
    """Keywords shared by both parts' kernels, and the mirroring quadrature."""
    from catalogs.cr_spectrum import proton_intensity

    shared = {
        "X": xs["X"],
        "N_nuc": args["N_nuc"],
        "pair_absorption": args["pair_absorption"],
        "intensity": proton_intensity(xs["E_p"], **args["cr"]),
    }
    quad = {k: args[k] for k in ("n_mu_b", "n_gamma", "n_gauss", "saturation", "node_tol", "dark_column", "u_min", "u_max", "include_atmosphere")}
    return shared, quad


def _load_part(path: Path, shape: tuple[int, ...]) -> dict | None:
    """The arrays of a cached part, or ``None`` if it is missing, unreadable or of another shape."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return out if out.get("L") is not None and out["L"].shape == shape else None


def _save_part(path: Path, **arrays: np.ndarray) -> None:
    """Write a cached part atomically (plain npz: numeric and fixed-width string arrays only)."""
    cstore.write_atomic(path, lambda tmp: np.savez(tmp, **arrays))


#: What the kernels read of a template row (the rest of the row is in ``YieldsPayload.model_coords``).
_PROFILES = ("radius", "rho", "v_conv", "column", "R_star")


def chunk_parts(
    start: int, stop: int, payload: YieldsPayload, tpl: xr.Dataset | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``L_ball`` and uncalibrated ``L_mirror`` of models ``[start, stop)``, both (n, 2, n_E) TeV^-1 s^-1.

    ``L_ball`` is cached in ``_cache/yields_ballistic/<key>.npz``, key = the combined row
    fingerprints (``ballistic_key``, template row) of the chunk.  ``L_mirror`` is cached in
    ``_cache/yields_mirror/<key>/<mirror key>.npz`` with each row's fingerprint (``mirror_key``,
    template row, f_B): rows whose fingerprint is found in any earlier version of the same chunk
    (same templates and kernel inputs, other f_B) are taken from it, so only models whose f_B
    changed run the mirroring kernel.  Files are written atomically and read with
    ``allow_pickle=False``; an unreadable one is recomputed.  ``tpl`` (the templates cube's
    rows ``[start, stop)``) is read from the store only if a kernel runs, when not given.
    """
    from tasks.kernels.luminosity import ballistic_luminosity, mirror_luminosity

    n, n_e = stop - start, payload.xsec["energy"].size
    shape = (n, len(MESSENGERS), n_e)
    ok = np.asarray(model_rows(payload.model_coords, start, stop)["valid"], bool)

    def profiles() -> xr.Dataset:
        nonlocal tpl
        if tpl is None:
            tpl = cstore.read_rows(payload.store, "templates", "model", slice(start, stop), variables=_PROFILES)
        return tpl

    xs, args = payload.xsec, payload.args
    shared, quad = _kernel_inputs(xs, args)
    template = np.asarray(payload.template_rows[start:stop])
    key = combine(Fingerprinter(shared=payload.ballistic_key).rows(template=template))

    path = cstore.cache_path(payload.store, "yields_ballistic", f"{key}.npz")
    cached = _load_part(path, shape)
    if cached is not None:
        L_b = cached["L"]
    else:
        L_b = np.zeros(shape)
        if ok.any():
            t = profiles().isel(model=np.flatnonzero(ok))
            L_b[ok] = ballistic_luminosity(
                t.radius.values, t.rho.values, t.R_star.values, xs["E_p"], xs["sigma_inel"], xs["dsigma"],
                n_b=args["n_b"], b_depth_min=args["b_depth_min"], **shared,
            )[0]
        _save_part(path, L=L_b)

    mirror = Fingerprinter(shared=payload.mirror_key)
    rows = np.asarray(
        mirror.rows(template=template, mirrored=payload.mirrored[start:stop], f_B=payload.f_B[start:stop]), dtype="U64"
    )
    folder = cstore.cache_path(payload.store, "yields_mirror", key)
    path = folder / f"{combine(rows.tolist())}.npz"
    cached = _load_part(path, shape)
    if cached is not None:
        return L_b, cached["L"]
    L_m = np.zeros(shape)
    todo = ok & payload.mirrored[start:stop]
    for other in sorted(folder.glob("*.npz")) if folder.is_dir() else ():
        if not todo.any():
            break  # every row found: the other versions need not be read
        old = _load_part(other, shape)
        if old is None or "rows" not in old:
            continue
        hit = todo & (old["rows"] == rows)
        L_m[hit] = old["L"][hit]
        todo &= ~hit
    if todo.any():
        idx = np.flatnonzero(todo)
        t = profiles().isel(model=idx)
        L_m[idx] = mirror_luminosity(
            t.radius.values, t.rho.values, t.v_conv.values, t.column.values, t.R_star.values,
            payload.f_B[start:stop][idx], xs["E_p"], xs["sigma_inel"], xs["dsigma"], **quad, **shared,
        )[0]
    _save_part(path, rows=rows, L=L_m)
    return L_b, L_m


def _read_inputs(store):
    xs = cstore.open_group_if_exists(store, "xsec", dask=False)
    tpl = cstore.open_group_if_exists(store, "templates", dask=False)
    if xs is None or tpl is None:
        missing = [n for n, d in (("xsec", xs), ("templates", tpl)) if d is None]
        raise MissingInputError(f"run the {', '.join(missing)} stage(s) first")
    return xs, tpl


@dataclass(frozen=True, eq=False)
class _Inputs:
    """What both :func:`prepare` and :func:`plan` read from the upstream cubes (cheap: coordinates, ledgers)."""

    tpl: xr.Dataset
    tpl_meta: xr.Dataset
    xsec: dict
    xsec_fp: str
    tpl_rows: list
    args: dict
    sun: int | None


def _inputs(config, store) -> _Inputs:
    xs, tpl = _read_inputs(store)
    tpl_meta = xr.Dataset({k: ("model", tpl[k].values) for k in MODEL_COORDS})  # one read per coordinate
    xsec = {
        "E_p": xs.E_p.values,
        "energy": xs.energy.values,
        "sigma_inel": xs.sigma_inel.values,
        "dsigma": np.moveaxis(xs.dsigma_dE.sel(messenger=list(MESSENGERS)).values, -1, 0),
        "X": config.interactions.hydrogen_fraction,
    }
    return _Inputs(
        tpl=tpl,
        tpl_meta=tpl_meta,
        xsec=xsec,
        xsec_fp=upstream_fingerprint(store, "xsec"),
        tpl_rows=upstream_rows(store, "templates", tpl.sizes["model"]),
        args=kernel_arguments(config),
        sun=find_sun(tpl_meta),
    )


def prepare(config, store, client=None) -> None:
    """Compute and cache the Sun's HAWC ratios and calibration (a kernel call), for :func:`plan` to read.

    Called by the runner when the stage runs, never by ``status``.
    """
    inp = _inputs(config, store)
    if inp.sun is None:
        if config.mirroring.calibration == "hawc":
            raise MissingInputError(_no_sun_message(config))
        return
    path = _solar_path(store, _solar_key(inp, config))
    if _read_solar(path) is None:
        out = _solar(inp, config)
        cstore.write_atomic(path, lambda tmp: tmp.write_text(json.dumps(out)))


def plan(config, store, client=None) -> StagePlan:
    """Template, one fingerprint per model, the HAWC calibration (cached by :func:`prepare`) and the payload."""
    inp = _inputs(config, store)
    tpl_meta, xsec, args = inp.tpl_meta, inp.xsec, inp.args
    n = tpl_meta.sizes["model"]
    energy = xsec["energy"]
    mi = config.mirroring
    sun = inp.sun
    if sun is None and mi.calibration == "hawc":
        raise MissingInputError(_no_sun_message(config))
    solar = None if sun is None else _read_solar(_solar_path(store, _solar_key(inp, config)))
    if mi.calibration == "hawc":
        if solar is None:
            raise NotPreparedError("the Sun's HAWC calibration is not computed for these inputs yet")
        cal, mode = solar["hawc_factor"], "hawc"
    elif mi.calibration == "none":
        cal, mode = 1.0, "none"
    else:
        cal, mode = float(mi.calibration), "fixed"

    stage = tpl_meta.stage.values.astype(str)
    mirrored = (stage == "MS") & (tpl_meta.mass_init.values <= mi.max_mass)
    common = {
        "code": CODE_VERSION,
        "xsec": inp.xsec_fp,
        "cr": config.cosmic_rays,
        "interactions": config.interactions,
        "quadrature": config.yields.model_dump(exclude={"chunk"}),
    }
    mirror_part = digest({"mirroring": mi, "calibration": cal})
    rows = Fingerprinter(**common).rows(template=np.asarray(inp.tpl_rows), mirror=np.where(mirrored, mirror_part, ""))
    fb, F = surface_parameters(tpl_meta.mass_init.values, tpl_meta.age.values, stage, mi.max_mass, args["surface"])
    chunk = config.yields.chunk
    shape = (n, len(SCENARIOS), len(MESSENGERS), energy.size)
    template = xr.Dataset(
        {"luminosity": (("model", "scenario", "messenger", "energy"), placeholder(shape, (chunk,) + shape[1:]))},
        coords={
            "model": np.arange(n),
            "scenario": list(SCENARIOS),
            "messenger": list(MESSENGERS),
            "energy": energy,
            **{k: ("model", tpl_meta[k].values) for k in MODEL_COORDS},
        },
    )
    attrs = {
        "config": {
            "cosmic_rays": config.cosmic_rays.model_dump(mode="json"),
            "interactions": config.interactions.model_dump(mode="json"),
            "mirroring": mi.model_dump(mode="json"),
            "yields": config.yields.model_dump(mode="json"),
        },
        "hawc_calibration": cal,
        "hawc_calibration_mode": mode,
        "calibration_applies_to": mi.calibration_applies_to,
        "pair_absorption": config.interactions.pair_absorption,
        "hawc_ratio_uncalibrated": None if solar is None else solar["ratio_uncalibrated"],
        "hawc_ratio_pure_mirroring": None if solar is None else solar["ratio_pure_mirroring"],
        "hawc_ratio_ballistic": None if solar is None else solar["ratio_ballistic"],
        "solar_model": sun,
        "solar_F_sur": None if solar is None else solar["F_sur"],
    }
    if sun is None:
        notes = [f"no solar template in this library: no HAWC comparison; calibration ({mode}) x {cal:.4g}"]
    elif solar is None:
        notes = [f"the Sun's HAWC comparison is computed when the stage runs; calibration ({mode}) x {cal:.4g}"]
    else:
        notes = [
            f"Sun at 1 TeV, flux / HAWC: ballistic {solar['ratio_ballistic']:.3g}, uncalibrated mirroring "
            f"scenario {solar['ratio_uncalibrated']:.3g} (pure mirroring, F_sur = 1: "
            f"{solar['ratio_pure_mirroring']:.3g}); calibration ({mode}) x {cal:.4g}"
        ]
    notes.append(
        "the calibration and F_sur only rescale the cached L_ball and L_mirror (no kernel call); "
        "a model reruns the mirroring kernel when its f_B or the kernel's inputs change"
    )
    # Models whose f_B varies with mass are the ones a change of f_B_high or of the f_B law sends
    # through the mirroring kernel; the others of a stale chunk (f_B_low) only rescale cached parts.
    kernel = mirrored & np.asarray(tpl_meta.valid.values, bool) & (fb != mi.f_B_low)
    kernel_before = np.concatenate([[0], np.cumsum(kernel)])
    return StagePlan(
        template=template,
        chunk=chunk,
        row_fingerprints=rows,
        attrs=attrs,
        cost=lambda start, stop: float(kernel_before[stop] - kernel_before[start]),
        payload=YieldsPayload(
            store=str(store),
            xsec=xsec,
            args=args,
            calibration=cal,
            f_B=fb,
            F_sur=F,
            mirrored=mirrored,
            template_rows=tuple(inp.tpl_rows),
            model_coords=compact_coords(tpl_meta),
            **_part_keys(config, inp),
        ),
        notes=notes,
    )


def _part_keys(config, inp: _Inputs) -> dict[str, str]:
    """Fingerprints of what every model's L_ball and uncalibrated L_mirror share (see :func:`chunk_parts`).

    Neither holds the calibration nor F_sur, which only weight the parts. The per-model parts
    (template row; f_B and whether mirroring applies for L_mirror) are added per chunk by the
    workers, which keeps planning (and ``status``) free of two more passes over every row.
    """
    y = config.yields
    physics = {"code": CODE_VERSION, "xsec": inp.xsec_fp, "cr": config.cosmic_rays, "interactions": config.interactions}
    return {
        "ballistic_key": digest({"part": "ballistic", "n_b": y.impact_points, "b_depth_min": y.impact_depth_min, **physics}),
        "mirror_key": digest(
            {"part": "mirror", "quadrature": y.model_dump(exclude={"chunk", "impact_points", "impact_depth_min"}), **physics}
        ),
    }


def _solar_key(inp: _Inputs, config) -> str:
    """Everything the Sun's calibration depends on (the cache key of :func:`_solar`)."""
    hawc = config.mirroring.model_dump(mode="json", exclude={"calibration"})
    return digest(
        {
            "code": CODE_VERSION,
            "sun": inp.tpl_rows[inp.sun],
            "xsec": inp.xsec_fp,
            "X": inp.xsec["X"],
            "args": inp.args,
            "hawc": hawc,
        }
    )


def _solar_path(store, key: str):
    return cstore.cache_path(store, "solar", f"{key}.json")


def _read_solar(path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _solar(inp: _Inputs, config) -> dict:
    """The Sun's ratios to HAWC and its HAWC calibration factor (seconds, and a numba compilation)."""
    from tasks.kernels.luminosity import AU_CM, flux_at_earth, hawc_calibration_factor, hawc_flux

    mi = config.mirroring
    uncal = _luminosity(inp.tpl.isel(model=[inp.sun]).load(), inp.xsec, inp.args, 1.0)
    energy = inp.xsec["energy"]
    i1 = int(np.argmin(np.abs(np.log(energy))))
    hawc_1tev = float(hawc_flux(energy[i1], mi.hawc_norm, mi.hawc_index))
    return {
        "ratio_uncalibrated": float(flux_at_earth(uncal.L[0, 1, 0, i1]) / hawc_1tev),
        "ratio_pure_mirroring": float(flux_at_earth(uncal.L_mirror[0, 0, i1]) / hawc_1tev),
        "ratio_ballistic": float(flux_at_earth(uncal.L[0, 0, 0, i1]) / hawc_1tev),
        "F_sur": float(uncal.F_sur[0]),
        "hawc_factor": float(
            hawc_calibration_factor(
                energy,
                uncal.L_mirror[0, 0],
                AU_CM,
                mi.hawc_norm,
                mi.hawc_index,
                tuple(mi.hawc_range),
                f_sur=float(uncal.F_sur[0]),
                L_ballistic_sun_gamma=uncal.L[0, 0, 0],
                method=mi.hawc_fit,
                pivot=mi.hawc_pivot,
            )
        ),
    }


def warm(on_workers: bool) -> None:
    """Both sides (the client computes the Sun's calibration): the luminosity kernels' modules and numba's set-up."""
    from catalogs.jit import warm_numba
    from tasks.kernels import luminosity  # noqa: F401 - imports the mirroring and ballistic kernels

    warm_numba()


STAGE = Stage(
    name="yields",
    code_version=CODE_VERSION,
    inputs=("xsec", "templates"),
    schema=SCHEMA,
    payload=YieldsPayload,
    compute=compute,
    plan=plan,
    prepare=prepare,
    rank=30,
    warm=warm,
)
