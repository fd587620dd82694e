"""The ``templates`` stage: stellar models on the shared radius grid, chunked along ``model``.

Two sources write the same cube (docs/physics.md P5):

* ``generator`` (default): SSE evolutionary tracks through COSMIC, resampled per stage,
  and the project's near-surface structure model for every snapshot.  Tracks are evolved
  when the stage is planned (on the workers when a cluster is given, up to
  :data:`TRACK_BATCH` of one metallicity per COSMIC call) and cached in the store per
  (mass, Z), so adding masses evolves only the new tracks; profiles are built per chunk on
  the workers (compiled structure model: :mod:`catalogs.stellar.envelope_kernel`).
* ``mesa``: MESA ``LOGS/`` directories, read and checked on the client before anything is
  written (a malformed file stops the run with nothing written); each model's fingerprint
  includes the bytes of its profile file, so one changed profile recomputes one chunk.

Models are ordered by (source, metallicity, initial mass, age); each row's fingerprint is
its metadata and the structure settings, so the layout may grow and still reuse rows.

Some generator snapshots have no hydrostatic envelope in the structure model (hot stripped
E-AGB stars of 16-20 Msun at high Z, where the Rosseland opacity of the iron bump puts
the envelope above the Eddington limit; see :mod:`catalogs.stellar.envelope`). They stay
in the cube, flagged by the per-model coordinates ``valid`` (False) and
``invalid_reason``, with all-zero profiles, so that no cube downstream holds a NaN.
Validity must be known when the cube's coordinates are written, i.e. on the client
before any chunk is computed: every snapshot whose electron-scattering Eddington factor is
at least :data:`SCREEN_GAMMA_E` is integrated once at plan time (the only ones that can
fail; results cached in the store by the row's structure inputs), all others are valid.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from catalogs.stellar.grid import radius_grid
from cube import store as cstore
from cube.axes import MODEL, MODEL_COORD_SPECS, MODEL_COORDS
from cube.fingerprint import Fingerprinter, digest, fingerprint
from cube.schema import GroupSchema, VarSpec, freeze
from tasks.stages.base import NotPreparedError, Stage, StagePlan, placeholder

__all__ = [
    "STAGE",
    "SCHEMA",
    "TemplatesPayload",
    "plan",
    "prepare",
    "compute",
    "model_table",
    "eddington_factor",
    "envelope_validity",
    "TRACKS_VERSION",
]

CODE_VERSION = "templates/2 sse-cosmic+envelope-mlt+valid-flag"
TRACKS_VERSION = "tracks/1"

SCHEMA = GroupSchema(
    name="templates",
    dims=("model", "radius"),
    chunk_dim="model",
    data_vars=freeze(
        {
            "rho": VarSpec(("model", "radius"), "g cm^-3", "mass density"),
            "v_conv": VarSpec(("model", "radius"), "cm s^-1", "convective velocity"),
            "column": VarSpec(("model", "radius"), "g cm^-2", "vertical column density from the surface"),
        }
    ),
    coords=freeze(
        {
            "model": MODEL,
            "radius": VarSpec(("radius",), "1", "r / R_star"),
            **MODEL_COORD_SPECS,
        }
    ),
)


@dataclass(frozen=True, eq=False)
class TemplatesPayload:
    """What a templates chunk needs.

    Attributes
    ----------
    radius : (n_r,) r / R_star, the shared grid.
    meta : dict of (n_models,) arrays
        :data:`cube.axes.MODEL_COORDS` and ``X`` (surface hydrogen mass fraction) of every model.
    alpha_mlt : float or None
        Mixing-length parameter of the generator's structure model (``None`` for MESA).
    profiles : dict or None
        MESA profiles ``rho`` [g cm^-3], ``v_conv`` [cm s^-1], ``column`` [g cm^-2], each
        (n_models, n_r); ``None`` for the generator, whose profiles the chunk builds.
    """

    radius: np.ndarray
    meta: dict
    alpha_mlt: float | None
    profiles: dict | None

#: Snapshots with an electron-scattering Eddington factor at least this are integrated at
#: plan time to find those without a hydrostatic envelope. The ones that fail have 0.49-0.70
#: (iron-bump opacity ~2 kappa_es lifts them above 1); below 0.3 the structure model has
#: not been seen to fail, and if one did the chunk would stop with an error, not a NaN.
SCREEN_GAMMA_E = 0.3

# Constants of the Eddington factor, in cgs, as astropy.constants (v8) gives them, written out
# so that planning does not import astropy: nominal L_sun (IAU 2015 Resolution B3) [erg s^-1],
# M_sun = GM_sun (IAU 2015 B3) / G (CODATA 2018) [g], c [cm s^-1], G (CODATA 2018, converted
# from SI, hence the last digits) [cm^3 g^-1 s^-2].
_L_SUN_CGS = 3.828e33
_M_SUN_CGS = 1.988409870698051e33
_C_CGS = 29979245800.0
_G_CGS = 6.674299999999999e-08


def _track_key(config, mass: float, z: float) -> str:
    t = config.templates
    extra = _track_extras(config, mass, z)
    return fingerprint(
        code=TRACKS_VERSION,
        mass=mass,
        z=z,
        snapshots=dict(t.snapshots_per_stage),
        extra=extra,
        t_max=t.max_age,
        min_envelope_mass=t.min_envelope_mass,
    )


def _track_extras(config, mass: float, z: float) -> list:
    """The configuration's extra snapshots of the track (mass, Z), as its cache key holds them."""
    return [list(e) for e in config.templates.extra_snapshots if np.isclose(e[0], mass) and np.isclose(e[1], z)]


#: Tracks of one metallicity evolved per COSMIC call: a call costs ~35 ms besides ~13 ms per
#: star (measured on paper tracks), and the batches are still many enough to share over workers.
TRACK_BATCH = 16


def _evolve_batch(masses: list, z: float, snapshots: dict, extra: list, t_max: float, min_env: float) -> list:
    """Snapshot tables of the tracks ``masses`` at metallicity ``z``, one COSMIC call for all.

    Each table is the one a call for its mass alone gives (COSMIC evolves every star on its
    own; the metallicity constants come from the call's first star, and all share Z): the
    extra snapshots are matched to each track inside ``evolve_tracks``, and a track with no
    snapshot gets the same empty table.
    """
    from catalogs.stellar.tracks import TRACK_COLUMNS, evolve_tracks

    out = evolve_tracks(
        masses, [z], snapshots_per_stage=snapshots, extra_snapshots=extra, t_max_yr=t_max, min_envelope_mass=min_env
    )
    frames = []
    for m in masses:
        part = out.loc[out["mass_init"] == m].reset_index(drop=True) if len(out) else out
        frames.append(part if len(part) else pd.DataFrame(columns=list(TRACK_COLUMNS)))
    return frames


def _cache_path(store, key: str) -> Path:
    return cstore.cache_path(store, "tracks", f"{key}.npz")


def _save_track(df: pd.DataFrame, path: Path) -> None:
    """Write a track's snapshot table as plain arrays (npz without pickled objects)."""
    arrays = {c: df[c].to_numpy() for c in df.columns}
    np.savez(path, **{c: (a.astype(str) if a.dtype == object else a) for c, a in arrays.items()})


def _load_cached(path: Path) -> pd.DataFrame | None:
    """A cached track, or ``None`` if there is none or it cannot be read as plain arrays.

    The store may sit on a shared file system that others can write to, so a cache entry is
    never unpickled: ``allow_pickle=False`` refuses object arrays, and an unreadable entry is
    recomputed (with a warning) instead of trusted.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return pd.DataFrame({k: data[k] for k in data.files})
    except Exception as exc:  # noqa: BLE001 - any unreadable entry is rebuilt, never executed
        import warnings

        warnings.warn(f"ignoring unreadable track cache {path} ({type(exc).__name__}: {exc}); recomputing it", stacklevel=2)
        return None


def generator_tracks(config, store, client=None) -> pd.DataFrame:
    """Snapshots of every (mass, Z) track of the configuration, evolving only uncached tracks."""
    t = config.templates
    pairs = [(float(m), float(z)) for z in sorted(set(t.metallicities)) for m in sorted(set(t.masses))]
    frames: dict[tuple[float, float], pd.DataFrame] = {}
    missing = []
    for m, z in pairs:
        cached = _load_cached(_cache_path(store, _track_key(config, m, z)))
        if cached is None:
            missing.append((m, z))
        else:
            frames[(m, z)] = cached
    snapshots = dict(t.snapshots_per_stage)
    batches = []
    for z in sorted({z for _, z in missing}):
        ms = [m for m, zz in missing if zz == z]
        # near-equal batches of at most TRACK_BATCH (19 tracks: 10 + 9, not 16 + 3 that keep one worker waiting)
        n_batches = -(-len(ms) // TRACK_BATCH)
        batches += [(list(part), z) for part in np.array_split(np.asarray(ms, dtype=object), n_batches)]
    # Every extra snapshot of the batch's tracks, once and in the configuration's order:
    # evolve_tracks gives each track those matching its own mass.
    args = [
        (
            ms,
            z,
            snapshots,
            [tuple(e) for e in t.extra_snapshots if np.isclose(e[1], z) and any(np.isclose(e[0], m) for m in ms)],
            t.max_age,
            t.min_envelope_mass,
        )
        for ms, z in batches
    ]
    if client is not None and args:
        futures = [client.submit(_evolve_batch, *a, pure=False) for a in args]
        parts = client.gather(futures)
    else:
        parts = [_evolve_batch(*a) for a in args]
    evolved = {(m, z): df for (ms, z), tables in zip(batches, parts) for m, df in zip(ms, tables)}
    results = [evolved[p] for p in missing]
    for (m, z), df in zip(missing, results):
        cstore.write_atomic(_cache_path(store, _track_key(config, m, z)), lambda tmp, df=df: _save_track(df, tmp))
        frames[(m, z)] = df
    out = pd.concat([frames[p] for p in pairs if len(frames[p])], ignore_index=True)
    out["source"] = "generator"
    return out


def _hydrogen_fraction(config, z: np.ndarray) -> np.ndarray:
    # Helium enrichment dY/dZ = 2 from Y_p: X = X(Z=0.02) + 3 (0.02 - Z), docs/physics.md P5 composition.
    return config.templates.atmosphere.hydrogen_fraction + 3.0 * (0.02 - np.asarray(z))


def model_table(config, store, client=None):
    """The model metadata table (one row per template) and, for MESA, the profiles.

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`MODEL_COORDS` plus ``X`` and ``row_input`` (what the row's
        profile depends on besides the code, e.g. a MESA file digest).
    profiles : dict or None
        ``{"rho", "v_conv", "column"}`` arrays (n_models, n_radius) for MESA sources.
    attrs : dict
        Extra group attributes (e.g. ``v_conv_source``).
    """
    t = config.templates
    radius = radius_grid(t.radius_points, t.depth_min)
    if t.source == "generator":
        table = generator_tracks(config, store, client)
        if "X_surface" in table and np.isfinite(table["X_surface"]).all():
            table["X"] = table["X_surface"].astype(float)
        else:
            table["X"] = _hydrogen_fraction(config, table["metallicity"].to_numpy())
        table["row_input"] = ""
        # A snapshot above the electron-scattering Eddington limit has no hydrostatic
        # envelope in this structure model: it is left out, and counted in the notes.
        gamma_e = eddington_factor(table["L_star"].to_numpy(float), table["M_star"].to_numpy(float), table["X"].to_numpy(float))
        keep = gamma_e < 1.0
        table = table.loc[keep].reset_index(drop=True)
        table["valid"], table["invalid_reason"] = envelope_validity(config, store, table, client)
        attrs = {
            "source": "generator (SSE via cosmic-popsynth + near-surface structure model)",
            "excluded_super_eddington": int((~keep).sum()),
            "invalid_models": int((~table["valid"]).sum()),
        }
        return table, None, attrs
    from catalogs.stellar.mesa import read_mesa_logs

    frames, profiles, v_sources = [], [], set()
    for logs in t.mesa_logs:
        mt = read_mesa_logs(logs, radius)
        md = mt.metadata.copy()
        md["source"] = [str(Path(logs) / f) for f in md["source_file"]] if "source_file" in md else str(logs)
        md["row_input"] = [_file_digest(Path(f) if Path(f).is_absolute() else Path(logs) / f) for f in md["source_file"]]
        if "X_surface" in md:
            md["X"] = md["X_surface"].astype(float)
        else:
            md["X"] = _hydrogen_fraction(config, md["metallicity"].to_numpy())
        frames.append(md)
        profiles.append(mt)
        v_sources.add(mt.v_conv_source)
    table = pd.concat(frames, ignore_index=True)
    # MESA profiles are taken as given: every model is a valid template.
    table["valid"] = True
    table["invalid_reason"] = ""
    prof = {k: np.concatenate([getattr(p, k) for p in profiles]) for k in ("rho", "v_conv", "column")}
    return table, prof, {"source": "mesa", "v_conv_source": ",".join(sorted(v_sources)), "invalid_models": 0}


def _structure(config) -> dict:
    """The structure-model settings every generator profile depends on (besides its row)."""
    t = config.templates
    return {"alpha_mlt": t.atmosphere.alpha_mlt, "radius": radius_grid(t.radius_points, t.depth_min)}


#: The row values a generator profile depends on, in the argument order of ``envelope_profiles``.
_STRUCTURE_INPUTS = ("M_star", "R_star", "L_star", "Teff", "X", "metallicity")


def _check_envelopes(rows: dict, alpha_mlt: float, radius: np.ndarray) -> list[str]:
    """Integrate the envelopes of ``rows`` (columns :data:`_STRUCTURE_INPUTS`); the failure of each ("" if none)."""
    from catalogs.stellar.envelope import envelope_profiles

    r = {k: np.asarray(v, float) for k, v in rows.items()}
    prof = envelope_profiles(*(r[k] for k in _STRUCTURE_INPUTS), radius, alpha_mlt=alpha_mlt)
    return [str(f) for f in prof.failure]


def envelope_validity(config, store, table: pd.DataFrame, client=None) -> tuple[np.ndarray, np.ndarray]:
    """Whether each generator snapshot has a hydrostatic envelope, and why not.

    Only snapshots with an electron-scattering Eddington factor >= :data:`SCREEN_GAMMA_E`
    are integrated (on the workers when a cluster is given); their verdicts are cached in
    the store, keyed by the structure settings and each row's structure inputs, so a
    no-op plan integrates nothing.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns M_star [Msun], R_star [cm], L_star [Lsun], Teff [K], X, metallicity.

    Returns
    -------
    valid : (n,) bool
    reason : (n,) str, "" where valid.
    """
    import json

    from cube.fingerprint import digest

    n = len(table)
    reason = np.full(n, "", dtype=object)
    if n == 0:
        return np.ones(0, bool), reason.astype(str)
    cols = {k: table[k].to_numpy(float) for k in _STRUCTURE_INPUTS}
    gamma_e = eddington_factor(cols["L_star"], cols["M_star"], cols["X"])
    screened = np.flatnonzero(gamma_e >= SCREEN_GAMMA_E)
    structure = _structure(config)
    keys = Fingerprinter(code=CODE_VERSION, structure=structure).rows(**{k: v[screened] for k, v in cols.items()})
    path = cstore.cache_path(store, "envelope_check", f"{digest({'code': CODE_VERSION, 'structure': structure})}.json")
    try:
        known: dict = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    todo = [i for i, key in zip(screened, keys) if key not in known]
    if todo:
        batch = 32
        parts = [
            ({k: v[todo[s : s + batch]] for k, v in cols.items()}, structure["alpha_mlt"], structure["radius"])
            for s in range(0, len(todo), batch)
        ]
        if client is not None:
            results = client.gather([client.submit(_check_envelopes, *p, pure=False) for p in parts])
        else:
            results = [_check_envelopes(*p) for p in parts]
        found = dict(zip(todo, (f for part in results for f in part)))
        known.update({key: found[i] for i, key in zip(screened, keys) if i in found})
        cstore.write_atomic(path, lambda tmp: tmp.write_text(json.dumps(known, sort_keys=True)))
    for i, key in zip(screened, keys):
        reason[i] = known[key]
    reason = reason.astype(str)
    return reason == "", reason


def eddington_factor(L_star, M_star, X) -> np.ndarray:
    """Electron-scattering Eddington factor kappa_es L / (4 pi c G M), kappa_es = 0.2 (1 + X) cm^2 g^-1.

    L_star in Lsun, M_star in Msun.
    """
    kappa = 0.2 * (1.0 + np.asarray(X, float))
    L = np.asarray(L_star, float) * _L_SUN_CGS
    M = np.asarray(M_star, float) * _M_SUN_CGS
    return kappa * L / (4.0 * np.pi * _C_CGS * _G_CGS * M)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def compute(start: int, stop: int, payload: TemplatesPayload) -> xr.Dataset:
    """Profiles of models ``[start, stop)``: rho [g cm^-3], v_conv [cm s^-1], column [g cm^-2]."""
    radius = payload.radius
    meta = {k: np.asarray(v)[start:stop] for k, v in payload.meta.items()}
    if payload.profiles is not None:
        rho, v_conv, column = (np.asarray(payload.profiles[k])[start:stop] for k in ("rho", "v_conv", "column"))
    else:
        from catalogs.stellar.envelope import envelope_profiles

        ok = np.asarray(meta["valid"], bool)
        # Invalid models (no hydrostatic envelope) hold zeros: the yields stage skips them
        # and the population stage gives them no weight.
        rho, v_conv, column = (np.zeros((stop - start, radius.size)) for _ in range(3))
        if ok.any():
            prof = envelope_profiles(
                *(np.asarray(meta[k], float)[ok] for k in _STRUCTURE_INPUTS),
                radius,
                alpha_mlt=payload.alpha_mlt,
            )
            if not prof.converged.all():
                i = int(np.flatnonzero(ok)[np.flatnonzero(~prof.converged)[0]])
                raise RuntimeError(
                    f"template {start + i} (mass_init {meta['mass_init'][i]} Msun, Z {meta['metallicity'][i]}, "
                    f"{meta['stage'][i]} at {meta['age'][i]:.4g} yr) was judged valid when the stage was planned but "
                    f"its envelope failed: {prof.failure[~prof.converged][0]}; lower "
                    "tasks.stages.templates.SCREEN_GAMMA_E so that the plan checks it"
                )
            rho[ok], v_conv[ok], column[ok] = prof.rho, prof.v_conv, prof.column
    coords = {"model": np.arange(start, stop), "radius": radius}
    coords.update({k: ("model", meta[k]) for k in MODEL_COORDS})
    return xr.Dataset(
        {
            "rho": (("model", "radius"), np.asarray(rho, float)),
            "v_conv": (("model", "radius"), np.asarray(v_conv, float)),
            "column": (("model", "radius"), np.asarray(column, float)),
        },
        coords=coords,
    )


def _library_key(config) -> str:
    """What a generator library depends on: the templates section but its chunking, and the code."""
    t = config.templates
    section = t.model_dump(mode="json", exclude={"chunk", "source", "mesa_logs"})
    return digest({"code": CODE_VERSION, "tracks": TRACKS_VERSION, "screen": SCREEN_GAMMA_E, "templates": section})


def _library_path(store, config) -> Path:
    return cstore.cache_path(store, "library", f"{_library_key(config)}.npz")


def _library(config, store, client=None) -> tuple[dict, dict | None, dict]:
    """Per-model arrays (:data:`MODEL_COORDS`, ``X``, ``row_input``), MESA profiles, group attrs."""
    table, profiles, attrs = model_table(config, store, client)
    meta = {k: table[k].to_numpy() for k in MODEL_COORDS}
    for k in ("stage", "source", "invalid_reason"):
        meta[k] = meta[k].astype(str)
    meta["valid"] = meta["valid"].astype(bool)
    meta["X"] = table["X"].to_numpy(float)
    meta["row_input"] = table["row_input"].to_numpy().astype(str)
    return meta, profiles, attrs


def prepare(config, store, client=None) -> None:
    """Evolve the tracks, check the envelopes and cache the generator library (the run's costly part).

    Called by the runner before :func:`plan` when the stage runs, never by ``status``. The
    library (every model's coordinates) is written to one file keyed by :func:`_library_key`,
    which :func:`plan` reads back; MESA libraries are read by the plan itself (their
    fingerprints hold the bytes of every profile file).
    """
    if config.templates.source != "generator":
        return
    path = _library_path(store, config)
    if _load_library(path) is not None:
        return
    meta, _, attrs = _library(config, store, client)
    arrays = {**meta, "_attrs": np.array(json.dumps(attrs))}
    cstore.write_atomic(path, lambda tmp: np.savez(tmp, **arrays))


def _load_library(path: Path) -> tuple[dict, dict] | None:
    """A cached library (plain arrays, never unpickled), or ``None`` if absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = {k: data[k] for k in data.files if k != "_attrs"}
            attrs = json.loads(str(data["_attrs"]))
    except Exception:  # noqa: BLE001 - an unreadable entry is rebuilt by prepare, never executed
        return None
    return meta, attrs


def _not_prepared(config, store) -> NotPreparedError:
    t = config.templates
    pairs = [(float(m), float(z)) for z in sorted(set(t.metallicities)) for m in sorted(set(t.masses))]
    todo = sum(not _cache_path(store, _track_key(config, m, z)).is_file() for m, z in pairs)
    if todo == 0:  # e.g. a store made before the library cache: a run assembles it, computing only what is stale
        return NotPreparedError("the template library of this configuration is not assembled yet (every track is cached)")
    return NotPreparedError(
        f"the template library of this configuration is not built yet ({todo} of {len(pairs)} tracks to evolve)"
    )


def plan(config, store, client=None) -> StagePlan:
    """Template, one fingerprint per model, and the chunk payload.

    The generator library comes from the cache :func:`prepare` writes (raises
    :class:`~tasks.stages.base.NotPreparedError` if it is not there); a MESA library is read
    from its files.
    """
    t = config.templates
    radius = radius_grid(t.radius_points, t.depth_min)
    if t.source == "generator":
        cached = _load_library(_library_path(store, config))
        if cached is None:
            raise _not_prepared(config, store)
        (meta, extra_attrs), profiles = cached, None
    else:
        meta, profiles, extra_attrs = _library(config, store, client)
    row_input = meta.pop("row_input")
    n, n_r = len(row_input), len(radius)
    zero = "0 where valid is False (no structure model: see invalid_reason)"
    template = xr.Dataset(
        {
            v: (("model", "radius"), placeholder((n, n_r), (t.chunk, n_r)), {"invalid_models": zero})
            for v in ("rho", "v_conv", "column")
        },
        coords={"model": np.arange(n), "radius": radius, **{k: ("model", meta[k]) for k in MODEL_COORDS}},
    )
    mesa = t.source == "mesa"
    # MESA profiles are read as they are: the generator's mixing length changes none of them.
    structure = {"radius": radius} if mesa else _structure(config)
    rows = Fingerprinter(code=CODE_VERSION, structure=structure).rows(
        **{k: meta[k] for k in (*MODEL_COORDS, "X")}, row_input=row_input
    )
    section = {"templates": t.model_dump(mode="json")}
    notes = [f"{n} models from {t.source}"]
    invalid = ~meta["valid"]
    if invalid.any():
        kinds = pd.Series(meta["invalid_reason"][invalid]).str.split(":").str[0].value_counts()
        notes.append(
            f"{int(invalid.sum())} models without a hydrostatic envelope ("
            + ", ".join(f"{k}: {c}" for k, c in kinds.items())
            + f"; Teff {meta['Teff'][invalid].min():.3g}-{meta['Teff'][invalid].max():.3g} K) marked invalid: "
            "zero profiles, zero yields, no population weight"
        )
    return StagePlan(
        template=template,
        chunk=t.chunk,
        row_fingerprints=rows,
        attrs={"config": section, **extra_attrs},
        payload=TemplatesPayload(
            radius=radius, meta=meta, alpha_mlt=None if mesa else t.atmosphere.alpha_mlt, profiles=profiles
        ),
        notes=notes,
    )


def warm(on_workers: bool) -> None:
    """Workers: COSMIC (the track evolution) and the envelope integration, its kernels and opacity table, on the Sun."""
    if not on_workers:
        return
    import cosmic.evolve  # noqa: F401 - ~1 s, the first _evolve_batch's otherwise

    from catalogs.stellar.envelope import envelope_profiles

    sun = [np.array([v]) for v in (1.0, 6.957e10, 1.0, 5772.0, 0.70, 0.02)]  # M, R [cm], L, Teff, X, Z (IAU 2015 R_sun)
    envelope_profiles(*sun, radius_grid(16, 1e-6))


STAGE = Stage(
    name="templates",
    code_version=CODE_VERSION,
    inputs=(),
    schema=SCHEMA,
    payload=TemplatesPayload,
    compute=compute,
    plan=plan,
    prepare=prepare,
    rank=20,
    warm=warm,
)
