"""Ingest MESA ``LOGS/`` directories as stellar templates (docs/physics.md P5, source 1).

A ``LOGS/`` directory (``history.data``, ``profiles.index``, ``profileN.data``) is read with
``mesa_reader`` (:class:`mesa_reader.MesaData` for history and profiles,
:class:`mesa_reader.MesaProfileIndex` for the index; they are opened one by one rather than
through ``MesaLogDir`` so that every error can name the file it comes from). Every profile
becomes one template: rho, v_conv and the column density interpolated onto the shared radius
grid ``radius = r / R_star`` (``R_star`` = photosphere radius, ``photosphere_r`` from the
profile header; MESA profiles start at tau = 2/3).

Column density: ``column(r) = P_surf / g_surf + int_r^R rho dr'`` (trapezoid over the MESA
zones; ``g_surf = G M_star / R_star^2``), i.e. it includes the atmosphere above the
photosphere as docs/physics.md P5 requires. Inside the innermost zone (r_min ~ 1e-3 R) rho and
v_conv are held at their innermost values down to r = 0.

v_conv: the ``conv_vel`` column [cm/s] when every profile has it (``v_conv_source = 'mesa'``);
otherwise it is recomputed for every profile with
:func:`catalogs.stellar.envelope.convective_velocity` (mixing-length theory, alpha_mlt) from the
profile's r, m, rho, T, P, X, Z and the local luminosity L(r) (``v_conv_source =
'mlt_recomputed'``; the lead stores this in the cube attributes). L(r) is the ``luminosity``
column if written, else the mass integral of the nuclear burning rates scaled to the
photospheric L (metadata column ``L_profile_source``). Using one source for all models keeps
the library homogeneous.

Stages from history columns (docs/physics.md P5, paper Table I), evaluated in this order:
MS if ``X_c >= x_c_min`` (1e-4); otherwise HG+RGB ('RGB') while ``log T_c < log_tc_he``
(8; docs/physics.md also lists Y_c > 0.9, which holds for every X_c < 1e-4 model before He
ignition, Y_c = 1 - Z - X_c; a model failing it is still counted as HG+RGB since no other stage
applies); CHeB if ``Y_c > y_c_min`` (1e-4) and ``log T_c >= 8``; EAGB once the core is C+O
(``X_C + X_O > 0.9``); TPAGB once thermal pulses start, detected as the H-free minus He-free
core mass ``he_core_mass - co_core_mass < tp_core_gap`` (0.1 Msun, the MIST / Dotter 2016
TP-AGB criterion, **[choice]**: docs/physics.md only says "thermal pulses"). Stages never go back
(running maximum over the history), so flashes and numerical noise do not re-label models.

Durations: stage k spans [age of its first history model, age of the first model of the next
stage) — the last stage ends at the last history age. Inside a stage each profile stands for
the time between the midpoints to its neighbouring profile ages, the first and last cells
clipped at the stage boundaries. The durations of the profiles of one stage therefore sum to
the stage span; summed over all profiles they equal the span of the stages that hold at least
one profile (the whole LOGS span when every stage has a profile).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from catalogs.stellar.tracks import STAGES, TRACK_COLUMNS

__all__ = ["MesaFormatError", "MesaTemplates", "read_mesa_logs", "classify_stages", "profile_durations"]

# astropy.constants (v8) values in cgs, written out so that importing this module (the command
# line does, for its error type) does not import astropy: nominal R_sun and L_sun (IAU 2015
# Resolution B3), M_sun = GM_sun (IAU 2015 B3) / G (CODATA 2018), G and the Stefan-Boltzmann
# constant (CODATA 2018, converted from SI, hence the last digits).
_R_SUN_CM = 69570000000.0
_M_SUN_G = 1.988409870698051e33
_L_SUN_CGS = 3.828e33
_G_CGS = 6.674299999999999e-08
_SIGMA_SB_CGS = 5.6703744191844314e-05


class MesaFormatError(ValueError):
    """A MESA output file is unreadable or inconsistent; the message names the file."""


@dataclass
class MesaTemplates:
    """Templates from one MESA ``LOGS/`` directory.

    Attributes
    ----------
    metadata : pandas.DataFrame
        One row per profile (model), columns :data:`catalogs.stellar.tracks.TRACK_COLUMNS`
        plus ``model_number``, ``profile_number``, ``source_file``, ``v_conv_from_mesa``,
        ``L_profile_source`` (L(r) used by the MLT recomputation) and
        ``v_conv_nonfinite_zones`` (MLT zones that returned NaN/inf, set to 0).
        Units as in ``evolve_tracks``: yr, cm, Msun, Lsun, K.
    radius : numpy.ndarray
        The radius grid r/R_star, shape (n_radius,).
    rho : numpy.ndarray
        Density [g cm^-3], shape (n_models, n_radius).
    v_conv : numpy.ndarray
        Convective velocity [cm s^-1], shape (n_models, n_radius); 0 in radiative zones.
    column : numpy.ndarray
        Vertical column from the surface [g cm^-2], including P_surf/g, shape (n_models, n_radius).
    v_conv_source : str
        ``'mesa'`` (MESA ``conv_vel``) or ``'mlt_recomputed'`` (project MLT).
    source_files : list of str
        Every file read: history.data, profiles.index, then the profiles in model order.
    """

    metadata: pd.DataFrame
    radius: np.ndarray
    rho: np.ndarray
    v_conv: np.ndarray
    column: np.ndarray
    v_conv_source: str
    source_files: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Reading with file-attributed errors
# ---------------------------------------------------------------------------------------

# Accepted spellings: (column, transform to the key's form). MESA lets users log either form.
_Alias = Sequence[tuple[str, str | None]]  # transform: None, "log10" or "exp10"
_HISTORY_ALIASES: dict[str, _Alias] = {
    "model_number": [("model_number", None)],
    "star_age": [("star_age", None)],
    "center_h1": [("center_h1", None)],
    "center_he4": [("center_he4", None)],
    "log_center_T": [("log_center_T", None), ("log_cntr_T", None), ("center_T", "log10")],
}
_HISTORY_OPTIONAL: dict[str, _Alias] = {
    "center_c12": [("center_c12", None)],
    "center_o16": [("center_o16", None)],
    "he_core_mass": [("he_core_mass", None)],
    "co_core_mass": [("co_core_mass", None), ("c_core_mass", None)],
}
_PROFILE_ALIASES: dict[str, _Alias] = {
    "logR": [("logR", None), ("radius", "log10")],
    "logRho": [("logRho", None), ("rho", "log10")],
    "logP": [("logP", None), ("pressure", "log10")],
    "mass": [("mass", None)],
}
_PROFILE_FOR_MLT: dict[str, _Alias] = {
    "logT": [("logT", None), ("temperature", "log10")],
}
_PROFILE_OPTIONAL: dict[str, _Alias] = {
    "X": [("x_mass_fraction_H", None), ("x", None), ("h1", None)],
    "Z": [("z_mass_fraction_metals", None), ("z", None)],
    "conv_vel": [("conv_vel", None), ("log_conv_vel", "exp10")],
}


def _fail(path: str, problem: str) -> MesaFormatError:
    return MesaFormatError(f"{os.path.basename(path)}: {problem}")


def _read_mesa_data(path: str):
    import mesa_reader as mr

    if not os.path.isfile(path):
        raise _fail(path, "file missing")
    try:
        data = mr.MesaData(path)
    except Exception as exc:  # mesa_reader/pandas raise many types on bad files
        raise _fail(path, f"unreadable ({type(exc).__name__}: {exc})") from exc
    if not getattr(data, "bulk_names", None) or len(data.bulk_data) == 0:
        raise _fail(path, "no data rows (file truncated?)")
    return data


def _column(data, path: str, key: str, aliases: "_Alias", required: bool = True):
    """Return the column as float64 in the form named by ``key`` (e.g. log10 for 'logRho')."""
    names = set(data.bulk_names)
    for name, transform in aliases:
        if name not in names:
            continue
        raw = np.asarray(data.bulk_data[name])
        try:
            values = raw.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise _fail(path, f"column '{name}' holds non-numeric values (file truncated?)") from exc
        if not np.all(np.isfinite(values)):
            bad = int(np.nonzero(~np.isfinite(values))[0][0])
            raise _fail(path, f"column '{name}' has NaN/inf at row {bad + 1} (corrupt or truncated file)")
        if transform == "log10":
            if np.any(values <= 0):
                bad = int(np.nonzero(values <= 0)[0][0])
                raise _fail(path, f"column '{name}' is negative or zero at row {bad + 1}")
            values = np.log10(values)
        elif transform == "exp10":
            values = 10.0**values
        return values
    if required:
        raise _fail(path, f"column '{aliases[0][0]}' missing")
    return None


def _header(data, path: str, key: str, default=None, required: bool = False):
    try:
        value = data.header_data[key]
    except (KeyError, AttributeError, TypeError):
        if required:
            raise _fail(path, f"header value '{key}' missing") from None
        return default
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise _fail(path, f"header value '{key}' is not a number: {value!r}") from None
    if not np.isfinite(value):
        raise _fail(path, f"header value '{key}' is not finite")
    return value


# ---------------------------------------------------------------------------------------
# Stages and durations
# ---------------------------------------------------------------------------------------


def classify_stages(
    center_h1: np.ndarray,
    center_he4: np.ndarray,
    log_center_T: np.ndarray,
    center_c12: np.ndarray | None = None,
    center_o16: np.ndarray | None = None,
    he_core_mass: np.ndarray | None = None,
    co_core_mass: np.ndarray | None = None,
    x_c_min: float = 1e-4,
    y_c_min: float = 1e-4,
    log_tc_he: float = 8.0,
    x_co_core: float = 0.9,
    tp_core_gap: float = 0.1,
) -> np.ndarray:
    """Stage index (into :data:`STAGES`) of every history model, in time order.

    Parameters
    ----------
    center_h1, center_he4 : numpy.ndarray
        Central H and He mass fractions.
    log_center_T : numpy.ndarray
        log10 of the central temperature [K].
    center_c12, center_o16 : numpy.ndarray, optional
        Central C and O mass fractions (without them E-AGB is never reached).
    he_core_mass, co_core_mass : numpy.ndarray, optional
        H-free and He-free core masses [Msun] (without them TP-AGB is never reached).
    x_c_min, y_c_min, log_tc_he, x_co_core : float
        docs/physics.md P5 thresholds.
    tp_core_gap : float
        [Msun] TP-AGB once ``he_core_mass - co_core_mass`` drops below this (**[choice]**).

    Returns
    -------
    numpy.ndarray of int
        Non-decreasing stage indices: 0 MS, 1 RGB (HG+RGB), 2 CHeB, 3 EAGB, 4 TPAGB.
    """
    xc = np.asarray(center_h1, float)
    yc = np.asarray(center_he4, float)
    ltc = np.asarray(log_center_T, float)
    stage = np.zeros(xc.shape, int)
    post_ms = xc < x_c_min
    stage[post_ms] = 1
    stage[post_ms & (yc > y_c_min) & (ltc >= log_tc_he)] = 2
    if center_c12 is not None and center_o16 is not None:
        co = np.asarray(center_c12, float) + np.asarray(center_o16, float)
        eagb = post_ms & (yc <= y_c_min) & (co > x_co_core)
        stage[eagb] = 3
        if he_core_mass is not None and co_core_mass is not None:
            gap = np.asarray(he_core_mass, float) - np.asarray(co_core_mass, float)
            stage[eagb & (gap < tp_core_gap)] = 4
    return np.maximum.accumulate(stage) if stage.size else stage


def profile_durations(
    profile_ages: np.ndarray,
    profile_stage: np.ndarray,
    history_ages: np.ndarray,
    history_stage: np.ndarray,
) -> np.ndarray:
    """Time [yr] each profile stands for within its stage (see module docstring).

    Parameters
    ----------
    profile_ages : numpy.ndarray
        Profile ages [yr].
    profile_stage : numpy.ndarray of int
        Stage index of each profile.
    history_ages : numpy.ndarray
        History ages [yr], increasing.
    history_stage : numpy.ndarray of int
        Stage index of each history model (non-decreasing).

    Returns
    -------
    numpy.ndarray
        Durations [yr], same order as ``profile_ages``.
    """
    profile_ages = np.asarray(profile_ages, float)
    durations = np.zeros(profile_ages.shape)
    t_end = float(history_ages[-1])
    for k in np.unique(profile_stage):
        in_hist = np.nonzero(history_stage == k)[0]
        lo = float(history_ages[in_hist[0]]) if in_hist.size else float(profile_ages[profile_stage == k].min())
        later = np.nonzero(history_stage > k)[0]
        hi = float(history_ages[later[0]]) if later.size else t_end
        idx = np.nonzero(profile_stage == k)[0]
        order = idx[np.argsort(profile_ages[idx], kind="stable")]
        a = np.clip(profile_ages[order], lo, hi)
        edges = np.concatenate([[lo], 0.5 * (a[1:] + a[:-1]), [hi]])
        durations[order] = np.diff(edges)
    return durations


# ---------------------------------------------------------------------------------------
# Profiles onto the radius grid
# ---------------------------------------------------------------------------------------


_BURNING_COLUMNS = ("pp", "cno", "tri_alpha", "burn_c", "burn_n", "burn_o", "c12_c12", "c12_o16", "o16_o16")


def _local_luminosity(data, path: str, m_g: np.ndarray, L_phot: float, lsun: float):
    """Local luminosity L(r) [erg/s] for the MLT recomputation, surface -> centre order.

    The photospheric L used at every depth would make the radiative gradient of the core far
    too large (a 1 Msun model then shows a spurious convective core inside ~0.15 R), so:
    the ``luminosity`` column [Lsun] when present; otherwise the integral of the nuclear
    burning rates (``pp``, ``cno``, ``tri_alpha``, ... in erg g^-1 s^-1) over mass from the
    centre, rescaled to the photospheric L at the surface (absorbs neutrino losses and
    gravothermal energy as a constant factor); otherwise the photospheric L everywhere.
    Returns (L, source) with source 'mesa' | 'nuclear_integral' | 'photospheric'.
    """
    lum = _column(data, path, "luminosity", [("luminosity", None)], required=False)
    if lum is not None:
        return lum * lsun, "mesa"
    eps = [_column(data, path, c, [(c, None)], required=False) for c in _BURNING_COLUMNS]
    eps = [e for e in eps if e is not None]
    if eps:
        e_tot = np.sum(eps, axis=0)[::-1]  # centre -> surface
        m_asc = np.concatenate([[0.0], m_g[::-1]])
        e_asc = np.concatenate([[e_tot[0]], e_tot])
        L_nuc = np.cumsum(0.5 * (e_asc[1:] + e_asc[:-1]) * np.diff(m_asc))
        if L_nuc[-1] > 0:
            return (L_nuc * (L_phot / L_nuc[-1]))[::-1], "nuclear_integral"
    return np.full(m_g.shape, L_phot), "photospheric"


def _profile_structure(data, path: str, radius: np.ndarray, need_mlt: bool, alpha_mlt: float):
    """Validate one profile and return (meta dict, rho, v_conv, column) on ``radius``."""
    n_zones = _header(data, path, "num_zones")
    n_rows = len(data.bulk_data)
    if n_zones is not None and int(n_zones) != n_rows:
        raise _fail(path, f"{n_rows} zones read, header num_zones = {int(n_zones)} (file truncated?)")
    cols = {k: _column(data, path, k, a) for k, a in _PROFILE_ALIASES.items()}
    opt = {k: _column(data, path, k, a, required=False) for k, a in _PROFILE_OPTIONAL.items()}
    if len(cols["logR"]) < 3:
        raise _fail(path, "fewer than 3 zones")
    rsun = _header(data, path, "rsun", _R_SUN_CM)
    msun = _header(data, path, "msun", _M_SUN_G)
    lsun = _header(data, path, "lsun", _L_SUN_CGS)

    r = 10.0 ** cols["logR"] * rsun  # surface -> centre
    rho = 10.0 ** cols["logRho"]
    if np.any(np.diff(r) >= 0):
        bad = int(np.nonzero(np.diff(r) >= 0)[0][0])
        raise _fail(path, f"radius not monotonic (decreasing inward) at zone {bad + 2}")
    if np.any(~np.isfinite(rho)) or np.any(rho <= 0):
        raise _fail(path, "density is NaN or not positive")

    r_phot = _header(data, path, "photosphere_r")
    R_star = r_phot * rsun if r_phot is not None else r[0]
    M_star = _header(data, path, "star_mass", cols["mass"][0])
    L_star = _header(data, path, "photosphere_L")
    if L_star is None:
        L_star = _header(data, path, "luminosity", required=True)
    if not (R_star > 0 and M_star > 0 and L_star > 0):
        raise _fail(path, "non-positive stellar radius, mass or luminosity in header")
    teff = _header(data, path, "Teff")
    if teff is None:
        teff = (L_star * lsun / (4 * np.pi * R_star**2 * _SIGMA_SB_CGS)) ** 0.25

    g_surf = _G_CGS * M_star * msun / R_star**2
    column_top = 10.0 ** cols["logP"][0] / g_surf

    # Ascending radius, plus the centre (values held from the innermost zone).
    x = np.concatenate([[0.0], (r / R_star)[::-1]])
    r_asc = np.concatenate([[0.0], r[::-1]])
    rho_asc = np.concatenate([[rho[-1]], rho[::-1]])
    # Column from the surface inward: trapezoid in r over the zones, then P_surf/g on top.
    seg = 0.5 * (rho_asc[1:] + rho_asc[:-1]) * np.diff(r_asc)
    col_asc = column_top + np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])

    if opt["conv_vel"] is not None and not need_mlt:
        v = np.maximum(opt["conv_vel"], 0.0)
        from_mesa = True
        l_source = "not_needed"
        n_bad = 0
    else:
        from catalogs.stellar.envelope import convective_velocity  # lazy: optional dependency

        logT = _column(data, path, "logT", _PROFILE_FOR_MLT["logT"])
        z_init = _header(data, path, "initial_z", 0.02)
        X = opt["X"] if opt["X"] is not None else np.full(r.shape, 0.76 - 3.0 * z_init)
        Z = opt["Z"] if opt["Z"] is not None else np.full(r.shape, z_init)
        L_r, l_source = _local_luminosity(data, path, cols["mass"] * msun, L_star * lsun, lsun)
        v = convective_velocity(
            r,
            cols["mass"] * msun,
            rho,
            10.0**logT,
            10.0 ** cols["logP"],
            L_r,
            X,
            Z,
            alpha_mlt=alpha_mlt,
        )
        v = np.asarray(v, float)
        # A non-finite MLT velocity would poison every downstream yield: set it to 0 (no
        # convective support) and count it in the metadata so it is visible.
        n_bad = int(np.count_nonzero(~np.isfinite(v)))
        v = np.maximum(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
        from_mesa = False
    v_asc = np.concatenate([[v[-1]], v[::-1]])

    # log interpolation for the exponentially varying rho and column; linear for v_conv.
    rho_g = 10.0 ** np.interp(radius, x, np.log10(rho_asc))
    col_g = 10.0 ** np.interp(radius, x, np.log10(col_asc))
    v_g = np.interp(radius, x, v_asc)

    meta = {
        "R_star": R_star,
        "M_star": M_star,
        "L_star": L_star,
        "Teff": teff,
        "log_g": float(np.log10(g_surf)),
        "X_surface": float(opt["X"][0]) if opt["X"] is not None else np.nan,
        "v_conv_from_mesa": from_mesa,
        "L_profile_source": l_source,
        "v_conv_nonfinite_zones": n_bad,
    }
    return meta, rho_g, v_g, col_g


# ---------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------


def read_mesa_logs(
    logs_dir: str | os.PathLike,
    radius: np.ndarray,
    alpha_mlt: float = 1.8,
    stage_thresholds: Mapping[str, float] | None = None,
) -> MesaTemplates:
    """Read a MESA ``LOGS/`` directory into templates on the shared radius grid.

    Parameters
    ----------
    logs_dir : path
        Directory with ``history.data``, ``profiles.index`` and the ``profileN.data`` files.
    radius : numpy.ndarray
        Radius grid r/R_star, ascending from 0 to 1 (``catalogs.stellar.grid.radius_grid``).
    alpha_mlt : float
        Mixing-length parameter used only when ``conv_vel`` has to be recomputed (docs/physics.md: 1.8).
    stage_thresholds : mapping, optional
        Overrides for :func:`classify_stages` keywords (x_c_min, y_c_min, log_tc_he,
        x_co_core, tp_core_gap).

    Returns
    -------
    MesaTemplates
        Metadata (one row per profile, time order), rho [g cm^-3], v_conv [cm s^-1],
        column [g cm^-2] on ``radius``, the v_conv source flag and the files read.

    Raises
    ------
    MesaFormatError
        On the first missing/truncated/inconsistent file, naming it; nothing is returned.
    """
    logs_dir = os.fspath(logs_dir)
    radius = np.asarray(radius, float)
    if radius.ndim != 1 or radius.size < 2 or np.any(np.diff(radius) <= 0) or radius[0] < 0 or radius[-1] > 1:
        raise ValueError("radius must be an ascending grid within [0, 1]")
    if not os.path.isdir(logs_dir):
        raise MesaFormatError(f"{logs_dir}: not a directory")

    # --- history
    hist_path = os.path.join(logs_dir, "history.data")
    hist = _read_mesa_data(hist_path)
    h = {k: _column(hist, hist_path, k, a) for k, a in _HISTORY_ALIASES.items()}
    h.update({k: _column(hist, hist_path, k, a, required=False) for k, a in _HISTORY_OPTIONAL.items()})
    ages = h["star_age"]
    if np.any(np.diff(ages) <= 0):
        raise _fail(hist_path, "star_age not increasing")
    h_stage = classify_stages(
        h["center_h1"],
        h["center_he4"],
        h["log_center_T"],
        h["center_c12"],
        h["center_o16"],
        h["he_core_mass"],
        h["co_core_mass"],
        **dict(stage_thresholds or {}),
    )
    model_numbers = h["model_number"].astype(int)

    # --- index
    import mesa_reader as mr

    index_path = os.path.join(logs_dir, "profiles.index")
    if not os.path.isfile(index_path):
        raise _fail(index_path, "file missing")
    try:
        index = mr.MesaProfileIndex(index_path)
        idx_models = np.asarray(index.model_numbers, int)
        idx_profiles = np.asarray(index.profile_numbers, int)
    except Exception as exc:
        raise _fail(index_path, f"unreadable ({type(exc).__name__}: {exc})") from exc
    if idx_models.size == 0:
        raise _fail(index_path, "lists no profiles")

    # --- profiles (all parsed and validated before anything is returned)
    datas, paths = [], []
    for p_num in idx_profiles:
        path = os.path.join(logs_dir, f"profile{p_num}.data")
        datas.append(_read_mesa_data(path))
        paths.append(path)
    need_mlt = any(
        not any(name in d.bulk_names for name, _ in _PROFILE_OPTIONAL["conv_vel"]) for d in datas
    )

    rows, rho, vconv, column = [], [], [], []
    lifetime = float(ages[-1])
    for m_num, p_num, data, path in zip(idx_models, idx_profiles, datas, paths):
        age = _header(data, path, "star_age", required=True)
        meta, rho_g, v_g, col_g = _profile_structure(data, path, radius, need_mlt, alpha_mlt)
        hit = np.nonzero(model_numbers == m_num)[0]
        k = int(h_stage[hit[-1]]) if hit.size else int(h_stage[np.argmin(np.abs(ages - age))])
        he_core = _header(data, path, "he_core_mass", 0.0)
        row = {
            "mass_init": _header(data, path, "initial_mass", float(hist.bulk_data["star_mass"][0])
                                 if "star_mass" in hist.bulk_names else np.nan),
            "metallicity": _header(data, path, "initial_z", np.nan),
            "age": age,
            "stage": STAGES[k],
            "duration": np.nan,
            "M_core": he_core,
            "M_core_CO": _header(data, path, "co_core_mass", 0.0),
            "M_env": meta["M_star"] - he_core,
            "M_env_conv": np.nan,
            "R_env_conv": np.nan,
            "R_zams": np.nan,
            "kstar": -1,
            "track_lifetime": lifetime,
            "track_complete": False,
            "is_extra": False,
            "model_number": int(m_num),
            "profile_number": int(p_num),
            "source_file": path,
            "_stage_idx": k,
        }
        row.update(meta)
        rows.append(row)
        rho.append(rho_g)
        vconv.append(v_g)
        column.append(col_g)

    meta_df = pd.DataFrame(rows)
    meta_df["duration"] = profile_durations(
        meta_df["age"].to_numpy(float), meta_df["_stage_idx"].to_numpy(int), ages, h_stage
    )
    order = np.argsort(meta_df["age"].to_numpy(float), kind="stable")
    meta_df = meta_df.iloc[order].reset_index(drop=True)
    meta_df = meta_df[
        list(TRACK_COLUMNS)
        + ["model_number", "profile_number", "source_file", "v_conv_from_mesa", "L_profile_source",
           "v_conv_nonfinite_zones"]
    ]
    return MesaTemplates(
        metadata=meta_df,
        radius=radius.copy(),
        rho=np.asarray(rho)[order],
        v_conv=np.asarray(vconv)[order],
        column=np.asarray(column)[order],
        v_conv_source="mlt_recomputed" if need_mlt else "mesa",
        source_files=[hist_path, index_path] + [paths[i] for i in order],
    )
