"""The functions of :mod:`stardiffuse`; every heavy import happens inside them.

Units follow docs/design.md: energies in TeV, intensities in TeV^-1 cm^-2 s^-1 sr^-1,
luminosities in TeV^-1 s^-1, lengths in kpc (Galaxy) or cm (stars).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import pandas as pd
    import xarray as xr
    from rich.console import Console

    from tasks.config import Config
    from tasks.runner import RunSummary

__all__ = [
    "cluster",
    "export",
    "figures",
    "load_config",
    "open",
    "open_tree",
    "parse_sweep",
    "report",
    "resolve_stages",
    "run",
    "solar_check",
    "solar_index",
    "status",
    "sweep",
    "validate",
]

StorePath = str | os.PathLike

#: Columns of :func:`status`.
STATUS_COLUMNS = ("stage", "chunks_total", "chunks_stale", "upstream_stale", "status", "reason")


# --- configuration and runs -------------------------------------------------------------------


def load_config(path: StorePath | None = None, preset: str | None = None, **overrides: Any) -> Config:
    """Load and validate a configuration, optionally changing single keys.

    Parameters
    ----------
    path : path, optional
        A YAML file (``tasks/config.py`` documents every key).  If it has a top-level
        ``preset:`` key, the file overrides that preset.
    preset : {'quick', 'paper'}, optional
        The shipped preset used when no file is given (default ``quick``).
    **overrides
        Dotted key paths and their values, applied after the file, for example
        ``**{"mirroring.f_B_high": 0.5}`` or ``mirroring__f_B_high=0.5`` (``__`` stands for the
        dot).  A mapping given for a section (``xsec={"chunk": 8}``) is merged into it.

    Returns
    -------
    Config
        The validated, immutable configuration.

    Raises
    ------
    ConfigError
        For an unreadable file, bad YAML, an unknown key or an invalid value; the message names
        the key path.

    Examples
    --------
    >>> import stardiffuse as sd
    >>> sd.load_config(preset="quick", **{"mirroring.f_B_high": 0.5}).mirroring.f_B_high
    0.5
    """
    from tasks.config import load_config as _load

    return _load(path, preset, overrides=overrides)


def _config(config: Config | StorePath | None) -> Config:
    from tasks.config import Config as _Config

    return config if isinstance(config, _Config) else load_config(config)


def resolve_stages(stages: Iterable[str] | str | None = None) -> list[str]:
    """The stages ``stages`` with everything upstream of them, in run order.

    Parameters
    ----------
    stages : iterable of str or str, optional
        Stage names (a comma-separated string is split); ``None`` means every stage.

    Returns
    -------
    list of str

    Raises
    ------
    UnknownStageError
        For a name that is no stage (the message lists the stages).
    """
    from tasks.stages import resolve

    if isinstance(stages, str):
        stages = stages.split(",")
    return resolve(stages)


def run(
    config: Config | StorePath | None,
    store: StorePath,
    client: Any = None,
    stages: Iterable[str] | str | None = None,
    *,
    console: Console | None = None,
) -> RunSummary:
    """Bring the cubes of ``store`` up to date with ``config``, computing only stale chunks.

    Parameters
    ----------
    config : Config or path
        A configuration from :func:`load_config`, or the path of a YAML file.
    store : path
        The Zarr v3 store (created if missing; its write lock is held during the run).
    client : distributed.Client, optional
        Workers to compute chunks on (for example from :func:`cluster`); ``None`` computes them
        in this process, one after another.
    stages : iterable of str, optional
        Stages to bring up to date, with their upstream stages (default: all).
    console : rich.console.Console, optional
        Where to show progress bars and, at the end, one line per stage; ``None`` is silent.

    Returns
    -------
    RunSummary
        ``summary.stages[name]`` has ``chunks_total``, ``chunks_computed``, ``chunks_copied``,
        ``seconds`` (wall) and ``work`` (``stars_sampled`` for ``population``);
        ``summary.as_json()`` is the object ``stardiffuse run --json`` prints.

    Raises
    ------
    ConfigError, StoreError, StoreLockedError, UnknownStageError, MissingInputError, ...
        See :data:`USER_ERRORS`: user errors, each with one message naming what to fix.
    """
    from tasks.runner import run as _run

    summary = _run(_config(config), store, client=client, stages=resolve_stages(stages) if stages is not None else None,
                   console=console)
    if console is not None:
        _print_summary(summary, console)
    return summary


def _print_summary(summary: RunSummary, console: Console) -> None:
    for name, res in summary.stages.items():
        extra = f", {res.chunks_copied} reused after a layout change" if res.chunks_copied else ""
        extra += "".join(f", {k.replace('_', ' ')}: {v:,}" for k, v in res.work.items())
        console.print(f"  {name:<11} {res.chunks_computed}/{res.chunks_total} chunks computed{extra} in {res.seconds:.1f} s")
        for note in res.notes:
            console.print(f"      {note}")


def status(config: Config | StorePath | None, store: StorePath, stages: Iterable[str] | str | None = None) -> pd.DataFrame:
    """What a run would do, per stage, without computing anything.

    Never fails as a whole: a stage that cannot be planned (an input cube is missing, the
    library misses masses) says why in its row, and the other stages are reported.

    Parameters
    ----------
    config : Config or path
        The configuration the next run would use.
    store : path
        The Zarr store (it need not exist yet).
    stages : iterable of str, optional
        Stages to report, with their upstream stages (default: all).

    Returns
    -------
    pandas.DataFrame
        One row per stage in run order, columns:

        ``stage`` (str); ``chunks_total``, ``chunks_stale`` (nullable int: ``<NA>`` when the
        stage cannot be planned); ``upstream_stale`` (list of the upstream stages whose rerun
        will make more of its chunks stale); ``status``: ``"up to date"``, ``"stale"``,
        ``"upstream stale"``, ``"waiting for upstream"`` or ``"cannot plan"``; ``reason`` (str or
        ``None``): why it is waiting or cannot be planned, why a stale stage's chunks can only be
        counted when it runs (``chunks_stale`` is then ``<NA>``: status never does a run's costly
        work, such as a new calibration on the Sun), or that the stored fingerprints were made
        by an older format.

    Raises
    ------
    ConfigError, UnknownStageError
        For a bad configuration or stage name (nothing else fails the table).
    """
    import pandas as pd

    from tasks.config import check_paths
    from tasks.runner import status as _status

    config = _config(config)
    check_paths(config)
    rows = []
    for name, st in _status(config, store, resolve_stages(stages) if stages is not None else None).items():
        upstream = list(st.get("upstream_stale", []))
        if "chunks_total" in st:
            state = "stale" if st["chunks_stale"] else ("upstream stale" if upstream else "up to date")
            reason = st.get("reason")
        elif st.get("needs_run"):  # stale, but only a run can count its chunks (e.g. a new solar calibration)
            state, reason = "stale", st["status"]
        else:
            reason = st["status"]
            state = "waiting for upstream" if reason.startswith("waiting for upstream") else "cannot plan"
        rows.append((name, st.get("chunks_total"), st.get("chunks_stale"), upstream, state, reason))
    columns = list(zip(*rows)) if rows else [()] * len(STATUS_COLUMNS)
    dtypes = (None, "Int64", "Int64", object, None, object)  # reason stays None (not NaN) when there is none
    return pd.DataFrame({c: pd.Series(list(v), dtype=t) for c, v, t in zip(STATUS_COLUMNS, columns, dtypes)})


def _status_record(row: Any) -> dict:
    """One row of :func:`status` as ``stardiffuse status --json`` prints it."""
    import pandas as pd

    if pd.isna(row.chunks_total):
        return {"status": row.reason}
    out: dict = {"chunks_total": int(row.chunks_total), "chunks_stale": int(row.chunks_stale)}
    if row.reason:
        out["reason"] = row.reason
    if row.upstream_stale:
        out["upstream_stale"] = list(row.upstream_stale)
    return out


@contextlib.contextmanager
def cluster(
    kind: str = "local",
    workers: int | None = None,
    *,
    config: Config | None = None,
    jobqueue: StorePath | None = None,
    console: Console | None = None,
) -> Iterator[Any]:
    """Dask workers for :func:`run`, started only when a stage first has chunks to compute.

    Parameters
    ----------
    kind : {'sync', 'local', 'slurm'}
        ``sync``: no workers (yields ``None``, chunks run in this process); ``local``: a
        ``distributed.LocalCluster`` of single-threaded worker processes; ``slurm``:
        dask-jobqueue ``SLURMCluster`` jobs (``deployment/jobqueue.yaml``, ``deployment/README.md``).
    workers : int, optional
        Worker processes (``local``, default: usable CPUs) or Slurm jobs (``slurm``).
    config : Config, optional
        Supplies the ``run`` section (adaptive jobs, worker lifetime, TLS, dashboard address,
        jobqueue file); default: the quick preset's.
    jobqueue : path, optional
        dask-jobqueue YAML for ``slurm`` (overrides ``run.jobqueue``).
    console : rich.console.Console, optional
        Where the dashboard address and the Slurm job ids are announced once the workers are up.

    Yields
    ------
    distributed.Client or None
        A client that starts its cluster on first use (``None`` for ``sync``); it is closed, and
        its cluster stopped, when the block ends.

    Raises
    ------
    ConfigError
        If the jobqueue file does not exist (checked before anything starts).
    ClusterError
        If the workers cannot be started (the message says why, with Slurm's reason).
    """
    from tasks.cluster import CLUSTER_KINDS, ClusterError, LazyClient, make_client
    from tasks.config import check_paths

    if kind not in CLUSTER_KINDS:
        raise ClusterError(f"unknown cluster kind {kind!r}: use one of {', '.join(CLUSTER_KINDS)} (--cluster)")
    config = config if config is not None else load_config()
    check_paths(config, cluster=kind, jobqueue=os.fspath(jobqueue) if jobqueue is not None else None)
    if kind == "sync":
        with make_client("sync"):
            yield None
        return
    r = config.run
    jq = jobqueue if jobqueue is not None else r.jobqueue
    adapt = (r.min_jobs or 1, r.max_jobs) if r.max_jobs else None
    options = {"wait_timeout": r.wait_timeout, "adapt": adapt, "worker_lifetime": r.worker_lifetime,
               "lifetime_stagger": r.lifetime_stagger, "tls": r.tls, "dashboard_address": r.dashboard_address,
               "announce": console.print if console is not None else None}
    from tasks import warm

    client = LazyClient(lambda: make_client(kind, workers, jq, **options), on_start=warm.start)
    try:
        yield client
    finally:
        client.close()
        warm.finish()


def parse_sweep(text: str) -> tuple[str, list]:
    """Split a sweep as the command line writes it, ``"KEY=V1,V2,..."``, into the key and its values.

    Returns
    -------
    (str, list)
        The dotted key and at least two values (each read as a YAML scalar: ``0.3`` is a float).

    Raises
    ------
    ConfigError
        If ``text`` is not of that form.
    """
    from tasks.sweep import parse_sweep as _parse

    return _parse(text)


def sweep(
    config: Config | StorePath | None,
    store: StorePath,
    key: str,
    values: Sequence[Any],
    client: Any = None,
    stages: Iterable[str] | str | None = None,
    *,
    console: Console | None = None,
) -> list[RunSummary]:
    """One store per value of one configuration key, each seeded from the previous one.

    ``store`` is brought up to date for ``values[0]``; ``<stem>.<key>=<value>.zarr`` beside it
    starts as a copy of the previous store for each further value, so only the chunks the key
    reaches are recomputed (``stardiffuse figures --band`` draws the band they span).

    Parameters
    ----------
    config : Config or path
        The configuration the values are set in.
    store : path
        The store of the first value.
    key : str
        Dotted key path, for example ``"mirroring.f_B_high"``.
    values : sequence
        At least two values; every resulting configuration is validated before anything runs.
    client, stages, console
        As for :func:`run`; with a console each value's store is announced before its run.

    Returns
    -------
    list of RunSummary
        One per value, in order (``summary.store`` is its store).

    Raises
    ------
    ConfigError
        For an unknown key or an invalid value (naming the key path), before anything runs.
    """
    from tasks.config import ConfigError
    from tasks.sweep import seed_from, sweep_stores, with_value

    if len(values) < 2:
        raise ConfigError(f"sweep of {key}: give at least two values, got {list(values)!r}")
    config = _config(config)
    configs = [with_value(config, key, v) for v in values]  # all validated before anything runs
    names = resolve_stages(stages) if stages is not None else None
    stores = sweep_stores(store, key, list(values))
    out = []
    for i, (cfg, st) in enumerate(zip(configs, stores)):
        if i:
            seed_from(stores[i - 1], st)
        if console is not None:
            console.print(f"[bold]{key} = {values[i]}[/bold] -> {st}")
        out.append(run(cfg, st, client=client, stages=names, console=console))
    return out


# --- reading a store --------------------------------------------------------------------------


def open(store: StorePath, group: str) -> xr.Dataset:  # noqa: A001 - the public name
    """Open one cube lazily.

    Parameters
    ----------
    store : path
        The Zarr v3 store.
    group : str
        A stage name (``sd.STAGES``); docs/design.md lists each cube's dims and units.

    Returns
    -------
    xarray.Dataset
        Data variables are dask arrays (nothing is read until ``.load()``/``.values``); small
        1-D coordinates (per model, pixel, region) are in memory, so boolean selection such as
        ``ds.where(ds.stage == "MS", drop=True)`` works.

    Raises
    ------
    StoreError
        If the store or the group does not exist (the message says which stage to run).
    """
    from cube.store import open as _open

    return _open(store, group)


def open_tree(store: StorePath) -> xr.DataTree:
    """The whole store as one lazy tree: one node per stage group, in run order.

    Works on a store in any state (also during or after an interrupted run, or one written by an
    older version): the groups being rebuilt and the bookkeeping beside them are left out.
    ``xarray.open_datatree(store, engine="zarr")`` gives the same groups on a store whose last
    run finished.

    Parameters
    ----------
    store : path
        The Zarr v3 store.

    Returns
    -------
    xarray.DataTree
        ``tree["sky"].to_dataset()`` is :func:`open` of ``sky``; data stay lazy (dask).

    Raises
    ------
    StoreError
        If the store does not exist or holds no cube.
    """
    import xarray as xr

    from cube.store import StoreError, stage_groups

    root = Path(store)
    if not root.exists():
        raise StoreError(f"store {root} does not exist; run `stardiffuse run --store {root}` first")
    present = stage_groups(root)
    if not present:
        raise StoreError(f"store {root} holds no cube; run `stardiffuse run --store {root}`")
    from tasks.stages import ORDER

    ordered = [g for g in ORDER if g in present] + [g for g in present if g not in ORDER]
    return xr.DataTree.from_dict({f"/{g}": open(root, g) for g in ordered})


def validate(ds: xr.Dataset, group: str) -> None:
    """Check ``ds`` against the cube schema of ``group`` (dims, variables, units).

    Raises
    ------
    SchemaError
        Naming the first mismatch.
    """
    from cube.schema import validate as _validate

    _validate(ds, group)


def solar_index(store: StorePath) -> int:
    """Position along ``model`` of the solar template (1 Msun, Z = 0.02, main sequence, closest to 4.57 Gyr).

    ``sd.open(store, "templates").isel(model=sd.solar_index(store))`` is the Sun; the same index
    selects its yields (``sd.open(store, "yields")``).

    Raises
    ------
    StoreError
        If the store has no templates cube.
    MissingInputError
        If the library has no solar model.
    """
    from tasks.stages.yields import solar_index as _solar_index

    return int(_solar_index(open(store, "templates")))


# --- results ----------------------------------------------------------------------------------


def solar_check(store: StorePath, energies: Sequence[float] | None = None) -> dict:
    """The quiet Sun of ``store`` next to HAWC and the black-sphere bound (``stardiffuse report``'s first table).

    Parameters
    ----------
    store : path
        A store with the ``xsec``, ``templates`` and ``yields`` cubes.
    energies : sequence of float, optional
        Energies [TeV] (default 0.5, 1, 2.6, 10, 100).

    Returns
    -------
    dict
        ``energy`` [TeV]; ``ballistic`` and ``mirroring`` -> ``gamma``/``nu`` -> E^2 dN/dE at 1 AU
        [TeV cm^-2 s^-1] per energy; ``hawc`` (HAWC's fit, gamma; measured 0.5-2.6 TeV);
        ``black_sphere`` -> ``gamma``/``nu``; ``calibration`` (factor on L_mirror),
        ``calibration_mode``, ``ratio_uncalibrated_1TeV``, ``ratio_ballistic_1TeV``,
        ``ratio_pure_mirroring_1TeV``, ``F_sur``, ``solar_model`` (its index along ``model``).
    """
    from tasks.report import SOLAR_ENERGIES
    from tasks.report import solar_check as _solar_check

    return _solar_check(store, SOLAR_ENERGIES if energies is None else energies)


def report(store: StorePath, *, console: Console | None = None) -> dict:
    """The report of ``store``: the quiet Sun and the paper's Galactic claims against this store.

    Parameters
    ----------
    store : path
        A complete store (``stardiffuse run`` through ``sed``).
    console : rich.console.Console, optional
        Also print the report's tables there (what ``stardiffuse report`` shows); default silent.

    Returns
    -------
    dict
        ``store``; ``sun``: :func:`solar_check`; ``claims``: a list of dicts with ``key``,
        ``claim``, ``paper`` (the paper's number), ``ours`` (number, dict of numbers or
        ``None``), ``agrees`` (``True``/``False``/``None``) and ``note``.  JSON-serialisable;
        ``pandas.DataFrame(r["claims"]).set_index("key")`` tabulates the claims.

    Raises
    ------
    StoreError
        If the store misses the cubes the report reads.
    """
    from tasks.report import galactic_claims, print_report

    result = {"store": str(store), "sun": solar_check(store), "claims": galactic_claims(store)}
    if console is not None:
        print_report(result, console)
    return result


def figures(store: StorePath, out: StorePath, *, band: Sequence[StorePath] = (), console: Console | None = None) -> list[Path]:
    """Draw the paper's Figs. 2-9 from ``store`` as PNG files in the folder ``out``.

    A figure whose cubes are missing is skipped (with a line on ``console`` naming the stage to
    run).

    Parameters
    ----------
    store : path
        The store to draw from.
    out : path
        Folder for ``figN_<name>.png`` (created if missing).
    band : sequence of paths
        Stores of a :func:`sweep`: Figs. 8 and 9 hatch the band their spectra span.
    console : rich.console.Console, optional
        One line per figure and the count at the end; default silent.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    StoreError
        If the store does not exist.
    """
    from tasks.figures import make_figures

    made = make_figures(store, out, console=console, band=tuple(band))
    written = [p for p in made.values() if not isinstance(p, str)]
    if console is not None:
        console.print(f"{len(written)} of {len(made)} figures written to {out}")
    return written


def export(store: StorePath, out: StorePath, *, console: Console | None = None) -> list[Path]:
    """Write the sky maps and region spectra of ``store`` as standard files in the folder ``out``.

    Per scenario and messenger ``sky_<scenario>_<messenger>_healpy.fits`` (one float64 column
    per energy for ``healpy.read_map``, energies [TeV] in the header) and, with gammapy
    installed, ``sky_<scenario>_<messenger>_gammapy.fits``; ``sed.ecsv`` with the region spectra
    (intensities in TeV^-1 cm^-2 s^-1 sr^-1, units in the header).

    Parameters
    ----------
    store : path
        A store with the ``sky`` and ``sed`` cubes.
    out : path
        Folder (created if missing).
    console : rich.console.Console, optional
        A line listing the files (and why the gammapy maps were skipped); default silent.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    StoreError
        If the store has no ``sky`` or ``sed`` cube.
    """
    from tasks.export import export as _export

    return _export(store, out, console=console)
