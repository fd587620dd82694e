"""Evolutionary tracks from the Hurley, Pols & Tout (2000) SSE formulae via COSMIC.

docs/physics.md P5, source 2 (the built-in offline generator). Each track is one single star
evolved with ``cosmic-popsynth`` (SSE engine): the star is put in a binary with a massless
companion (``m2 = 0``, ``kstar_2 = 15``, a massless remnant) on a 1e12-day orbit, so the
companion never interacts. COSMIC writes every internal SSE timestep to its ``bcm`` table
when ``timestep_conditions=[['dtp=0.0']]`` (``dtp = 0`` Myr: print at every step; measured on
the 1 Msun, Z = 0.02 track: 1001 MS rows, 1001 HG, 594 RGB, 101 CHeB, 138 E-AGB, the step
set by COSMIC's ``pts1``/``pts2``/``pts3`` defaults).

Stages (docs/physics.md P5, paper Table I) from the SSE stellar type ``kstar``:
0-1 -> 'MS', 2-3 -> 'RGB' (Hertzsprung gap + red giant branch), 4 -> 'CHeB',
5 -> 'EAGB', 6 -> 'TPAGB'. Everything with ``kstar >= 7`` (naked helium stars 7-9 and
remnants 10-14) is dropped, and so are post-main-sequence rows whose hydrogen envelope
``M_star - M_core`` has fallen below ``min_envelope_mass`` (COSMIC keeps kstar 5/6 for the
post-AGB contraction of the bare core: R ~ 0.01 Rsun, Teff ~ 1e5 K, not a giant). The
track's lifetime ends at the first dropped row (end of the TP-AGB, pre-supernova, or
envelope loss), or at ``t_max_yr`` if the star is still a kept type then
(``track_complete = False``).

Resampling: each stage [t_start, t_end) is cut into ``n`` equal time bins and one snapshot
is put at each bin centre; its ``duration`` is the bin width, so per stage the durations add
up to the stage duration and per track to ``track_lifetime`` (the stages tile
[0, lifetime)). Extra requested snapshots (e.g. the Sun) are inserted into their stage and
then *all* durations of that stage are recomputed as the time cells around each snapshot age
(midpoints between neighbouring snapshot ages, clipped at the stage boundaries). For equally
spaced bin centres this reproduces the equal shares exactly; with an extra snapshot it takes
its share from its two neighbours only, and the stage total is unchanged.

Snapshot properties are interpolated in time between the bracketing SSE rows of the same
stage (log10 for R, L and Teff; linear for masses). SSE does not follow surface abundances:
``X_surface = 0.76 - 3 Z`` (the Pols et al. 1998 / Hurley et al. 2000 relation used inside
SSE itself for the initial composition), constant along the track (no dredge-up).
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import json
import operator
import os
import shutil
import sys
import tempfile
import threading
import warnings
from importlib.resources import files as _resource_files
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "STAGES",
    "TRACK_COLUMNS",
    "KSTAR_STAGE",
    "DEFAULT_SNAPSHOTS_PER_STAGE",
    "default_bse_settings",
    "evolve_tracks",
    "resample_track",
]

#: Stage names in evolutionary order (docs/physics.md P5).
STAGES: tuple[str, ...] = ("MS", "RGB", "CHeB", "EAGB", "TPAGB")

#: SSE stellar type -> stage; types not listed (>= 7) are excluded.
KSTAR_STAGE: dict[int, str] = {0: "MS", 1: "MS", 2: "RGB", 3: "RGB", 4: "CHeB", 5: "EAGB", 6: "TPAGB"}

DEFAULT_SNAPSHOTS_PER_STAGE: dict[str, int] = {"MS": 20, "RGB": 20, "CHeB": 10, "EAGB": 5, "TPAGB": 5}

#: Columns of the snapshot table, shared with :mod:`catalogs.stellar.mesa`.
TRACK_COLUMNS: tuple[str, ...] = (
    "mass_init",  # Msun
    "metallicity",  # Z
    "age",  # yr
    "stage",  # str, one of STAGES
    "duration",  # yr, Delta t the snapshot stands for
    "R_star",  # cm, photospheric radius
    "M_star",  # Msun, current mass
    "L_star",  # Lsun
    "Teff",  # K
    "log_g",  # log10(g / cm s^-2)
    "M_core",  # Msun, helium core mass
    "M_core_CO",  # Msun, CO core mass
    "M_env",  # Msun, hydrogen-rich envelope M_star - M_core
    "M_env_conv",  # Msun, mass of the convective envelope (SSE menv; NaN if unknown)
    "R_env_conv",  # cm, depth of the convective envelope (SSE renv; NaN if unknown)
    "R_zams",  # cm, radius at t = 0
    "X_surface",  # surface hydrogen mass fraction
    "kstar",  # SSE stellar type at the snapshot (-1 when not from SSE)
    "track_lifetime",  # yr, end of the last kept stage
    "track_complete",  # bool, False if the track was cut at t_max_yr
    "is_extra",  # bool, snapshot requested through extra_snapshots
)

# astropy.constants (v8) values in cgs, written out so that importing the stage names does not
# import astropy: nominal R_sun (IAU 2015 Resolution B3), M_sun = GM_sun (IAU 2015 B3) / G
# (CODATA 2018), G (CODATA 2018, converted from SI, hence the last digits).
_R_SUN_CM = 69570000000.0
_M_SUN_G = 1.988409870698051e33
_G_CGS = 6.674299999999999e-08
_MYR = 1.0e6  # yr per Myr (COSMIC time unit)
# COSMIC keeps its state in Fortran module variables: two threads evolving at once would
# corrupt each other, so calls in one process are serialised (use processes for parallelism).
_COSMIC_LOCK = threading.Lock()

# ---------------------------------------------------------------------------------------
# COSMIC settings
# ---------------------------------------------------------------------------------------

_BIN_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY_OPS = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _safe_numeric(text: str):
    """Evaluate a numeric literal/list expression such as ``"[2.0/21.0, 1]"``.

    Only numbers, lists/tuples, unary +/- and + - * / are accepted, so nothing in the
    settings file can execute code.
    """

    def _ev(node):
        if isinstance(node, ast.Expression):
            return _ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(
            node.value, bool
        ):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [_ev(e) for e in node.elts]
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
            return _BIN_OPS[type(node.op)](_ev(node.left), _ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
            return _UNARY_OPS[type(node.op)](_ev(node.operand))
        raise ValueError(f"unsupported expression in COSMIC setting: {text!r}")

    return _ev(ast.parse(text.strip(), mode="eval"))


def default_bse_settings(overrides: Mapping[str, object] | None = None) -> dict:
    """BSE flags from the defaults shipped in ``cosmic/data/cosmic-settings.json``.

    Parameters
    ----------
    overrides : mapping, optional
        Flags replacing the defaults (e.g. ``{"windflag": 3}``).

    Returns
    -------
    dict
        ``BSEDict`` for :meth:`cosmic.evolve.Evolve.evolve`; string-valued array defaults
        (``fprimc_array``, ``qcrit_array``, ...) are parsed into numbers.
    """
    settings = json.loads(_resource_files("cosmic.data").joinpath("cosmic-settings.json").read_text("utf-8"))
    bse: dict = {}
    for category in settings:
        if category.get("category") != "bse":
            continue
        for flag in category["settings"]:
            defaults = [opt["name"] for opt in flag.get("options", []) if opt.get("default")]
            if not defaults:
                continue
            value = defaults[0]
            if isinstance(value, str):
                value = _safe_numeric(value)
            bse[flag["name"]] = value
    if overrides:
        bse.update(dict(overrides))
    return bse


class _SerialPool:
    """Minimal in-process stand-in for a multiprocessing pool.

    COSMIC opens a ``MultiPool`` when no pool is given; inside a dask worker that would fork
    processes, so the evolution is run serially in the calling process instead.
    """

    def map(self, func, items):
        return [func(x) for x in items]

    def imap(self, func, items):
        return (func(x) for x in items)


_SCRATCH: str | None = None


@contextlib.contextmanager
def _in_scratch_dir():
    """Run with the working directory in a private scratch folder of this process.

    BSE writes diagnostics (e.g. "EVOLV2 ARRAY WARNING") to Fortran unit 99, which opens
    ``fort.99`` in the current directory on first use; without this, every run would leave
    that file in the user's working directory. The folder lives as long as the process
    (the Fortran unit stays open) and is removed at exit.
    """
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = tempfile.mkdtemp(prefix="stardiffuse-cosmic-")
        atexit.register(shutil.rmtree, _SCRATCH, True)
    here = os.getcwd()
    os.chdir(_SCRATCH)
    try:
        yield
    finally:
        os.chdir(here)


@contextlib.contextmanager
def _silenced(enabled: bool = True):
    """Silence Python warnings and the Fortran library's writes to fd 1 and 2.

    The Fortran code writes to the process file descriptors directly, so sys.stdout
    redirection is not enough; the descriptors are duplicated and restored. This is
    process-wide for its short duration (other threads' output is lost meanwhile).
    """
    if not enabled:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = []
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in (1, 2):
                try:
                    saved.append((fd, os.dup(fd)))
                    os.dup2(devnull, fd)
                except OSError:
                    pass
            with contextlib.redirect_stdout(open(os.devnull, "w")) as _o, contextlib.redirect_stderr(_o):
                try:
                    yield
                finally:
                    _o.close()
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            os.close(devnull)


def _run_cosmic(
    masses: np.ndarray,
    metallicity: float,
    t_max_yr: float,
    porb_days: float,
    bse_settings: Mapping[str, object],
    randomseed: int,
) -> pd.DataFrame:
    """Evolve single stars of one metallicity; return the full COSMIC ``bcm`` table."""
    from cosmic.evolve import Evolve
    from cosmic.sample.initialbinarytable import InitialBinaryTable

    n = len(masses)
    ibt = InitialBinaryTable.InitialBinaries(
        m1=np.asarray(masses, float),
        m2=np.zeros(n),
        porb=np.full(n, porb_days),
        ecc=np.zeros(n),
        tphysf=np.full(n, t_max_yr / _MYR),
        kstar1=np.where(np.asarray(masses) < 0.7, 0, 1),
        kstar2=np.full(n, 15),
        metallicity=np.full(n, metallicity),
    )
    _bpp, bcm, _ic, _kick = Evolve.evolve(
        initialbinarytable=ibt,
        BSEDict=dict(bse_settings),
        pool=_SerialPool(),
        timestep_conditions=[["dtp=0.0"]],
        randomseed=randomseed,
        dt_mass_modifiers=[],
    )
    return bcm


# ---------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------


def _core_mass(b: pd.DataFrame) -> np.ndarray:
    """Hydrogen-free core mass [Msun]: COSMIC >= 4 splits it into He-layer + CO-core columns."""
    if "massc_he_layer_1" in b:
        return b["massc_he_layer_1"].to_numpy(float) + b["massc_co_layer_1"].to_numpy(float)
    return b["massc_1"].to_numpy(float)


def _cells(ages: np.ndarray, t_lo: float, t_hi: float) -> np.ndarray:
    """Time cell [yr] of each (sorted) age inside [t_lo, t_hi]: midpoints to neighbours, clipped."""
    edges = np.concatenate([[t_lo], 0.5 * (ages[1:] + ages[:-1]), [t_hi]])
    return np.diff(np.clip(edges, t_lo, t_hi))


def resample_track(
    bcm: pd.DataFrame,
    mass_init: float,
    metallicity: float,
    snapshots_per_stage: Mapping[str, int],
    extra_ages: Sequence[float] = (),
    t_max_yr: float | None = None,
    x_surface_slope: float = 3.0,
    x_surface_zero: float = 0.76,
    min_envelope_mass: float = 1.0e-2,
) -> pd.DataFrame:
    """Resample one SSE track (COSMIC ``bcm`` rows of one star) into stage snapshots.

    Parameters
    ----------
    bcm : pandas.DataFrame
        Rows of one star, COSMIC units (tphys Myr, Rsun, Lsun, Msun, K).
    mass_init : float
        Initial mass [Msun].
    metallicity : float
        Z.
    snapshots_per_stage : mapping
        Number of equal-time snapshots per stage name (missing stage -> 1).
    extra_ages : sequence of float
        Extra snapshot ages [yr]; ages outside the kept stages are ignored.
    t_max_yr : float, optional
        End of the COSMIC run [yr]; a track still alive then is ``track_complete = False``.
    x_surface_slope, x_surface_zero : float
        Surface hydrogen ``X = x_surface_zero - x_surface_slope * Z`` (SSE's own relation).
    min_envelope_mass : float
        [Msun] A post-main-sequence row whose hydrogen envelope ``M_star - M_core`` is below
        this is a stripped / post-AGB object and ends the track (**[choice]**: stars leave
        the AGB when the envelope drops to ~1e-2 Msun; the post-AGB crossing lasts ~1e4 yr).

    Returns
    -------
    pandas.DataFrame
        One row per snapshot, columns :data:`TRACK_COLUMNS`, sorted by age.
    """
    b = bcm.sort_values("tphys", kind="stable").drop_duplicates("tphys", keep="first")
    t = b["tphys"].to_numpy(float) * _MYR
    kstar = b["kstar_1"].to_numpy(int)
    core = _core_mass(b)
    # Post-AGB / stripped rows keep kstar 5-6 in COSMIC while the H envelope is gone
    # (R ~ 0.01-1 Rsun, Teff ~ 1e5 K): they are proto-white dwarfs, not giants, so the
    # track ends there as it does at the first remnant / naked-He row.
    stripped = (kstar >= 2) & (b["mass_1"].to_numpy(float) - core < min_envelope_mass)
    dead = np.nonzero((kstar >= 7) | stripped)[0]
    if dead.size:
        n_keep, lifetime, complete = int(dead[0]), float(t[dead[0]]), True
    else:
        n_keep = len(t)
        lifetime = float(t_max_yr if t_max_yr is not None else t[-1])
        complete = False
    t, kstar, b = t[:n_keep], kstar[:n_keep], b.iloc[:n_keep]
    if n_keep == 0:
        return pd.DataFrame(columns=list(TRACK_COLUMNS))

    stage_of_row = np.array([KSTAR_STAGE[int(k)] for k in kstar])
    # Contiguous runs of one stage; a run ends where the next one starts (or at the lifetime).
    change = np.nonzero(stage_of_row[1:] != stage_of_row[:-1])[0] + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [n_keep]])
    r_zams = float(b["rad_1"].iloc[0]) * _R_SUN_CM
    x_surf = x_surface_zero - x_surface_slope * metallicity

    cols = {
        "logR": np.log10(b["rad_1"].to_numpy(float)),
        "logL": np.log10(np.maximum(b["lum_1"].to_numpy(float), 1e-300)),
        "logT": np.log10(b["teff_1"].to_numpy(float)),
        "M_star": b["mass_1"].to_numpy(float),
        "M_core": core[:n_keep],
        "M_core_CO": b["massc_co_layer_1"].to_numpy(float) if "massc_co_layer_1" in b else np.zeros(n_keep),
        "M_env_conv": b["menv_1"].to_numpy(float),
        "R_env_conv": b["renv_1"].to_numpy(float),
    }

    rows = []
    extra_ages = np.asarray(sorted(float(a) for a in extra_ages), float)
    for stage in STAGES:
        runs = [(s, e) for s, e in zip(starts, stops) if stage_of_row[s] == stage]
        if not runs:
            continue
        # Run time spans: [t_first_row, t_first_row_of_next_run) ; the last run ends at lifetime.
        spans = [(t[s], t[e] if e < n_keep else lifetime) for s, e in runs]
        lengths = np.array([hi - lo for lo, hi in spans])
        total = lengths.sum()
        if total <= 0:
            continue
        n = max(int(snapshots_per_stage.get(stage, 1)), 1)
        # Equal physical-time bins on the stage clock (runs concatenated).
        clock = (np.arange(n) + 0.5) * total / n
        bounds = np.concatenate([[0.0], np.cumsum(lengths)])
        run_idx = np.clip(np.searchsorted(bounds, clock, side="right") - 1, 0, len(runs) - 1)
        ages = np.array([spans[i][0] + c - bounds[i] for i, c in zip(run_idx, clock)])
        is_extra = np.zeros(n, bool)
        for a in extra_ages:
            for i, (lo, hi) in enumerate(spans):
                if lo <= a < hi:
                    ages = np.append(ages, a)
                    run_idx = np.append(run_idx, i)
                    is_extra = np.append(is_extra, True)
        order = np.argsort(ages, kind="stable")
        ages, run_idx, is_extra = ages[order], run_idx[order], is_extra[order]
        # Durations: time cell of each snapshot on the stage clock (= bin width when evenly spaced).
        stage_clock = np.array([bounds[i] + a - spans[i][0] for i, a in zip(run_idx, ages)])
        durations = _cells(stage_clock, 0.0, total)
        for a, i, dur, ex in zip(ages, run_idx, durations, is_extra):
            s, e = runs[i]
            tt = t[s:e]
            vals = {k: float(np.interp(a, tt, v[s:e])) for k, v in cols.items()}
            k_here = int(kstar[s:e][max(np.searchsorted(tt, a, side="right") - 1, 0)])
            r_cm = 10.0 ** vals["logR"] * _R_SUN_CM
            rows.append(
                {
                    "mass_init": float(mass_init),
                    "metallicity": float(metallicity),
                    "age": float(a),
                    "stage": stage,
                    "duration": float(dur),
                    "R_star": r_cm,
                    "M_star": vals["M_star"],
                    "L_star": 10.0 ** vals["logL"],
                    "Teff": 10.0 ** vals["logT"],
                    "log_g": float(np.log10(_G_CGS * vals["M_star"] * _M_SUN_G / r_cm**2)),
                    "M_core": vals["M_core"],
                    "M_core_CO": vals["M_core_CO"],
                    "M_env": vals["M_star"] - vals["M_core"],
                    "M_env_conv": vals["M_env_conv"],
                    "R_env_conv": vals["R_env_conv"] * _R_SUN_CM,
                    "R_zams": r_zams,
                    "X_surface": x_surf,
                    "kstar": k_here,
                    "track_lifetime": lifetime,
                    "track_complete": complete,
                    "is_extra": bool(ex),
                }
            )
    out = pd.DataFrame(rows, columns=list(TRACK_COLUMNS))
    return out.sort_values("age", kind="stable").reset_index(drop=True)


def evolve_tracks(
    masses: Iterable[float],
    metallicities: Iterable[float],
    snapshots_per_stage: Mapping[str, int] | None = None,
    extra_snapshots: Sequence[tuple[float, float, float]] = ((1.0, 0.02, 4.57e9),),
    t_max_yr: float = 2.0e10,
    porb_days: float = 1.0e12,
    bse_overrides: Mapping[str, object] | None = None,
    randomseed: int = 42,
    min_envelope_mass: float = 1.0e-2,
    quiet: bool = True,
) -> pd.DataFrame:
    """Evolve the grid ``masses x metallicities`` with SSE (COSMIC) and resample into snapshots.

    Parameters
    ----------
    masses : iterable of float
        Initial masses [Msun], 0.1-25 (docs/physics.md P5 library span).
    metallicities : iterable of float
        Z, within COSMIC-SSE's range 1e-4..0.03.
    snapshots_per_stage : mapping, optional
        Snapshots per stage name, default :data:`DEFAULT_SNAPSHOTS_PER_STAGE`.
    extra_snapshots : sequence of (mass [Msun], Z, age [yr])
        Extra snapshot ages, applied to the track of the grid whose (mass, Z) match
        (``numpy.isclose``, rtol 1e-6); entries matching no track of this call are ignored, so
        the same list can be passed to every chunk. The default puts the Sun
        (1 Msun, Z = 0.02, 4.57 Gyr) in the table when the grid contains that track.
    t_max_yr : float
        End of the evolution [yr]; a star still burning then gets ``track_lifetime = t_max_yr``
        and ``track_complete = False`` (0.1-0.9 Msun stars never finish in a Hubble time).
    porb_days : float
        Orbital period of the massless companion [days]; large enough that it never interacts.
    bse_overrides : mapping, optional
        BSE flags replacing the COSMIC defaults (see :func:`default_bse_settings`).
    randomseed : int
        Seed passed to COSMIC (only used for supernova kicks, which do not affect the kept
        stages); fixed so that chunks are reproducible.
    min_envelope_mass : float
        [Msun] post-main-sequence rows with a hydrogen envelope below this end the track
        (post-AGB / stripped objects); see :func:`resample_track`.
    quiet : bool
        Silence COSMIC's prints and warnings.

    Returns
    -------
    pandas.DataFrame
        One row per snapshot, columns :data:`TRACK_COLUMNS`; units: age, duration,
        track_lifetime in yr, R_star, R_env_conv, R_zams in cm, masses in Msun, L_star in Lsun,
        Teff in K. Rows are ordered by metallicity, mass, age.
    """
    masses = np.atleast_1d(np.asarray(list(masses), float))
    metallicities = np.atleast_1d(np.asarray(list(metallicities), float))
    if masses.size == 0 or metallicities.size == 0:
        return pd.DataFrame(columns=list(TRACK_COLUMNS))
    if np.any(masses <= 0):
        raise ValueError("masses must be positive")
    if np.any((metallicities < 1e-4) | (metallicities > 0.03)):
        raise ValueError(f"metallicities must lie in [1e-4, 0.03] (SSE range), got {metallicities}")
    per_stage = dict(DEFAULT_SNAPSHOTS_PER_STAGE)
    if snapshots_per_stage is not None:
        unknown = set(snapshots_per_stage) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage names {sorted(unknown)}; expected {STAGES}")
        per_stage.update({k: int(v) for k, v in snapshots_per_stage.items()})
    bse = default_bse_settings(bse_overrides)

    frames = []
    for z in metallicities:
        # One COSMIC call per metallicity: COSMIC computes the metallicity-dependent SSE
        # constants (zpars) from the first system of a call.
        with _COSMIC_LOCK, _silenced(quiet), _in_scratch_dir():
            bcm = _run_cosmic(masses, float(z), t_max_yr, porb_days, bse, randomseed)
        for i, m in enumerate(masses):
            rows = bcm.loc[bcm["bin_num"] == i] if "bin_num" in bcm else bcm.loc[[i]]
            extra = [a for (me, ze, a) in extra_snapshots if np.isclose(me, m, rtol=1e-6) and np.isclose(ze, z, rtol=1e-6)]
            frames.append(
                resample_track(rows, m, z, per_stage, extra, t_max_yr=t_max_yr, min_envelope_mass=min_envelope_mass)
            )
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(TRACK_COLUMNS))
    out = pd.concat(frames, ignore_index=True)
    out["stage"] = out["stage"].astype(str)
    out["kstar"] = out["kstar"].astype(int)
    out["track_complete"] = out["track_complete"].astype(bool)
    out["is_extra"] = out["is_extra"].astype(bool)
    return out
