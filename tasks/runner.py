"""The thin orchestration layer: bring each cube group up to date, recomputing only stale chunks.

For one stage:

1. the stage plans: a template of the whole group, one fingerprint per row of the
   chunked dim, and a pure chunk function;
2. chunk fingerprints are compared with the ledger; if the group's layout is unchanged,
   stale chunks are rewritten in place; if it changed (a grid grew, a model was added),
   the group is rebuilt in a staging group where every chunk whose rows all exist in the
   old group is copied over and only the others are computed, then swapped in;
3. workers compute and write chunks; the client records each fingerprint as its write
   succeeds; group attributes are written and metadata consolidated once at the end.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cube import store as cstore
from cube.fingerprint import FORMAT, ChunkKey, chunk_keys, combine
from cube.schema import SCHEMA_ATTR, apply_metadata, validate
from tasks.stages.base import NotPreparedError, Stage, StagePlan

__all__ = ["StageResult", "RunSummary", "run_stage", "run", "stage_status", "status"]


@dataclass
class StageResult:
    """What one stage did: chunks in the group, chunks computed, chunks copied, wall seconds."""

    chunks_total: int = 0
    chunks_computed: int = 0
    chunks_copied: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    work: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        out = {
            "chunks_total": self.chunks_total,
            "chunks_computed": self.chunks_computed,
            "seconds": round(self.seconds, 3),
            **self.work,
        }
        if self.chunks_copied:
            out["chunks_copied"] = self.chunks_copied
        return out


@dataclass
class RunSummary:
    store: str
    stages: dict[str, StageResult]

    def as_json(self) -> dict:
        return {"store": self.store, "stages": {k: v.as_json() for k, v in self.stages.items()}}


def _compute_and_write(store, target: str, group: str, key: ChunkKey, compute: Callable, payload: Any) -> ChunkKey:
    ds = compute(key.start, key.stop, payload)
    cstore.validate_chunk(store, target, key, ds)
    cstore.write_chunk(store, target, key, ds)
    return key


def _copy_and_write(store, source: str, target: str, key: ChunkKey, positions: list[int]) -> ChunkKey:
    ds = cstore.read_rows(store, source, key.dim, np.asarray(positions))
    cstore.write_chunk(store, target, key, ds)
    return key


def _row_index(ledger: Mapping[str, dict]) -> dict[str, int]:
    index: dict[str, int] = {}
    for entry in ledger.values():
        start = entry.get("start")
        if start is None or entry.get("format") != FORMAT:
            continue
        for i, fp in enumerate(entry.get("rows", [])):
            index.setdefault(fp, start + i)
    return index


class _Payload:
    """Stands in a task's arguments for the stage payload, scattered once per worker by :func:`_execute`."""


PAYLOAD = _Payload()

#: Rounds in a row without a finished chunk after which a stage gives up, when workers keep
#: leaving with data only they held (adaptive Slurm jobs that end, killed workers): otherwise
#: the payload is scattered again and the unfinished chunks are resubmitted.
MAX_STALLED_ROUNDS = 3


#: Seconds a stage waits for a worker to come back after all its workers left (a Slurm job
#: replaced by adapt may queue and import for minutes before it connects).
WORKER_RETURN_TIMEOUT = 600.0


def _wait_for_a_worker(client, label: str) -> None:
    """Block until at least one worker is connected (the event), failing only after a long guard."""
    try:
        client.wait_for_workers(1, timeout=WORKER_RETURN_TIMEOUT)
    except (TimeoutError, OSError) as exc:
        from tasks.cluster import ClusterError

        raise ClusterError(
            f"stage {label}: every worker left and none came back within {WORKER_RETURN_TIMEOUT:g} s; "
            "check the cluster (squeue, job logs) and rerun: recorded chunks are kept"
        ) from exc


def _execute(
    tasks: list[tuple[ChunkKey, Callable, tuple]],
    client,
    on_done: Callable[[ChunkKey], None],
    label: str,
    console: Console | None,
    payload: Any = None,
) -> None:
    if not tasks:
        return
    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
        transient=False,
    )
    with progress:
        bar = progress.add_task(label, total=len(tasks))
        if client is None:
            for key, fn, args in tasks:
                on_done(fn(*(payload if a is PAYLOAD else a for a in args)))
                progress.advance(bar)
            return
        from distributed import as_completed
        from distributed.client import FutureCancelledError

        pending = {key: (fn, args) for key, fn, args in tasks}
        stalled, round_ = 0, 0
        while pending:
            round_ += 1
            before = len(pending)
            if round_ > 1:
                _wait_for_a_worker(client, label)
            # One copy per worker instead of one per task: payloads can hold a whole model table.
            shared = client.scatter(payload, broadcast=True, hash=False) if payload is not None else None
            futures = {
                client.submit(fn, *(shared if a is PAYLOAD else a for a in args), pure=False,
                              key=f"{label}-{key.name}-r{round_}"): key
                for key, (fn, args) in pending.items()
            }
            lost = False
            try:
                for fut in as_completed(list(futures)):
                    try:
                        done_key = fut.result()
                    except FutureCancelledError:
                        lost = True  # its inputs left with a worker: resubmitted below
                        continue
                    on_done(done_key)
                    pending.pop(futures[fut], None)
                    progress.advance(bar)
            finally:
                for fut in futures:
                    fut.cancel()
            if pending and not lost:  # pragma: no cover - as_completed returns when all are done
                raise RuntimeError(f"stage {label}: {len(pending)} chunks neither finished nor failed")
            stalled = stalled + 1 if len(pending) == before else 0
            if stalled >= MAX_STALLED_ROUNDS:
                from tasks.cluster import ClusterError

                raise ClusterError(
                    f"stage {label}: {len(pending)} chunks lost their workers {stalled} times in a row; "
                    f"check the workers (lifetime, memory) and rerun: only these chunks are computed"
                )


def run_stage(stage: Stage, config, store, client=None, console: Console | None = None) -> StageResult:
    """Bring the group of ``stage`` in ``store`` up to date with ``config``.

    Parameters
    ----------
    stage : Stage
        The stage to run.
    config : tasks.config.Config
        The validated configuration.
    store : path
        The Zarr v3 store (its lock must be held by the caller).
    client : distributed.Client, optional
        Workers to run chunks on; ``None`` runs them in this process, one after another.
    console : rich.console.Console, optional
        Where to show progress; ``None`` shows none.
    """
    t0 = time.perf_counter()
    if stage.prepare is not None:
        stage.prepare(config, store, client)
    plan: StagePlan = stage.plan(config, store, client)
    if not isinstance(plan.payload, stage.payload):
        raise TypeError(f"stage {stage.name}: the plan's payload is a {type(plan.payload).__name__}, not a {stage.payload.__name__}")
    group, dim = stage.name, stage.chunk_dim
    template = apply_metadata(plan.template, stage.schema)
    keys, wanted = _wanted(plan, group, dim)
    rows = plan.row_fingerprints

    template_layout = cstore.layout_signature(template, dim, plan.chunk)
    staging = cstore.staging_name(group)
    copies: list[tuple[ChunkKey, list[int]]] = []
    stored_layout = _stored_layout(store, group)
    if stored_layout == template_layout and _coords_match(store, group, template, dim):
        target = group
        cstore.drop_group(store, staging)
        ledger = cstore.read_ledger(store, group)
        todo = [k for k in keys if ledger.get(k.name, {}).get("fingerprint") != wanted[k]]
        cstore.forget(store, todo, group=group)
        old_format = _old_format_note(ledger, len(todo))
    else:
        target = staging
        if _stored_layout(store, staging) != template_layout:
            cstore.setup_group(store, staging, template, dim, plan.chunk)
            cstore.group_attrs_update(store, staging, {"layout": template_layout})
        ledger = cstore.read_ledger(store, staging)
        pending = [k for k in keys if ledger.get(k.name, {}).get("fingerprint") != wanted[k]]
        cstore.forget(store, pending, group=staging)
        # Rows can only be copied from a readable old group; a stray ledger alone is ignored.
        old_ledger = cstore.read_ledger(store, group) if stored_layout is not None else {}
        old_format = _old_format_note(old_ledger, len(pending))
        old_rows = _row_index(old_ledger) if rows is not None else {}
        todo = []
        for k in pending:
            pos = [old_rows.get(fp) for fp in rows[k.start : k.stop]] if old_rows else []
            if old_rows and all(p is not None for p in pos):
                copies.append((k, pos))
            else:
                todo.append(k)

    def done(key: ChunkKey) -> None:
        row_fps = list(rows[key.start : key.stop]) if rows is not None else []
        cstore.record(store, key, wanted[key], row_fps, group=target, start=key.start)

    if plan.cost is not None:
        # The scheduler starts queued chunks in the order they are submitted: longest first.
        todo.sort(key=lambda k: -plan.cost(k.start, k.stop))
    tasks = [(k, _copy_and_write, (store, group, target, k, pos)) for k, pos in copies]
    tasks += [(k, _compute_and_write, (store, target, group, k, stage.compute, PAYLOAD)) for k in todo]
    _execute(tasks, client, done, group, console, payload=plan.payload if todo else None)

    if target == staging:
        cstore.swap_in_staging(store, group)
    cstore.group_attrs_update(
        store,
        group,
        {**plan.attrs, "code_version": stage.code_version, "layout": template_layout, SCHEMA_ATTR: stage.schema.as_dict()},
    )
    validate(cstore.open_group_if_exists(store, group), stage.schema)
    return StageResult(
        chunks_total=len(keys),
        chunks_computed=len(todo),
        chunks_copied=len(copies),
        seconds=time.perf_counter() - t0,
        notes=list(plan.notes) + ([old_format] if old_format else []),
        work=plan.describe(todo) if plan.describe else {},
    )


def _wanted(plan: StagePlan, group: str, dim: str) -> tuple[list[ChunkKey], dict[ChunkKey, str]]:
    """The plan's chunk keys and the fingerprint each chunk should have."""
    size = plan.template.sizes[dim]
    keys = chunk_keys(group, dim, size, plan.chunk)
    rows = plan.row_fingerprints
    if rows is None:
        return keys, {k: plan.chunk_fingerprint(k.start, k.stop) for k in keys}
    if len(rows) != size:
        raise RuntimeError(f"stage {group}: {len(rows)} row fingerprints for {size} rows")
    return keys, {k: combine(rows[k.start : k.stop]) for k in keys}


def _old_format_note(ledger: Mapping[str, dict], n_stale: int) -> str | None:
    """Why chunks are stale when the stored fingerprints were made by another format, else ``None``."""
    formats = {e.get("format") for e in ledger.values()} - {FORMAT}
    if not formats or not n_stale:
        return None
    names = ", ".join(sorted(str(f) if f else "unversioned (before 0.2)" for f in formats))
    return (
        f"stored fingerprints were made by an older format ({names}; now {FORMAT}): they cannot be "
        f"compared, so these chunks are recomputed once"
    )


def _stored_layout(store, group: str) -> dict | None:
    import zarr

    try:
        g = zarr.open_group(str(store), path=group, mode="r", zarr_format=3)
    except Exception:  # noqa: BLE001 - any unreadable group is simply rebuilt
        return None
    return g.attrs.get("layout")


def _coords_match(store, group: str, template, dim: str) -> bool:
    """Whether the stored per-row coordinates along ``dim`` are the template's, names and values.

    Chunks rewritten in place leave the coordinates as stored, so a new coordinate (a
    code change) or new values (a row's metadata changed) must rebuild the group, copying
    every row still wanted, like a change of layout.
    """
    import zarr

    try:
        g = zarr.open_group(str(store), path=group, mode="r", zarr_format=3)
        for name, coord in template.coords.items():
            if coord.dims != (dim,) or name == dim:
                continue
            if name not in g or not np.array_equal(np.asarray(g[name][...]), np.asarray(coord.values)):
                return False
    except Exception:  # noqa: BLE001 - an unreadable group is simply rebuilt
        return False
    return True


def stage_status(stage: Stage, config, store) -> dict:
    """Chunks total and stale for one stage, without computing anything.

    The stage is planned but not prepared (:attr:`Stage.prepare`): a plan that needs what
    only a run computes raises :class:`~tasks.stages.base.NotPreparedError`. When stored
    fingerprints were made by an older format, ``reason`` says so.
    """
    plan = stage.plan(config, store, None)
    dim = stage.chunk_dim
    keys, wanted = _wanted(plan, stage.name, dim)
    if _stored_layout(store, stage.name) != cstore.layout_signature(
        plan.template, dim, plan.chunk
    ) or not _coords_match(store, stage.name, plan.template, dim):
        ledger = {}
    else:
        ledger = cstore.read_ledger(store, stage.name)
    stale = sum(ledger.get(k.name, {}).get("fingerprint") != wanted[k] for k in keys)
    out = {"chunks_total": len(keys), "chunks_stale": int(stale)}
    reason = _old_format_note(ledger, stale)
    if reason:
        out["reason"] = reason
    return out


def status(config, store, stages: Iterable[str] | None = None) -> dict[str, dict]:
    """Per stage, what a run would do, without computing anything or failing as a whole.

    Parameters
    ----------
    config : tasks.config.Config
    store : path
    stages : iterable of str, optional
        Stage names (with their upstream stages); default all.

    Returns
    -------
    dict
        ``{stage: {...}}`` in run order.  A stage that can be planned has ``chunks_total``,
        ``chunks_stale``, ``reason`` (stored fingerprints of an older format) and
        ``upstream_stale`` (stages upstream whose rerun will make more of its chunks stale:
        its fingerprints follow their chunks).  A stage that cannot be planned has
        ``status``: ``"waiting for upstream (...)"`` when an input cube is missing,
        ``"stale: ..."`` (and ``needs_run``) when its chunks can only be counted once the
        stage runs (for example tracks to evolve), or ``"cannot plan: ..."`` with the
        reason (for example a library that misses the sampled masses); the other stages
        are reported all the same.
    """
    from tasks.stages import ORDER, STAGES, UPSTREAM, resolve

    out: dict[str, dict] = {}
    behind: dict[str, set] = {}
    for name in resolve(stages):
        try:
            out[name] = stage_status(STAGES[name], config, store)
        except FileNotFoundError as e:
            out[name] = {"status": f"waiting for upstream ({e})"}
        except NotPreparedError as e:
            out[name] = {"status": f"stale: {e}; its chunks are counted when it runs", "needs_run": True}
        except Exception as e:  # noqa: BLE001 - one stage's planning error must not hide the others
            out[name] = {"status": f"cannot plan: {e}"}
        ups = {
            u for u in UPSTREAM[name] if out.get(u, {}).get("chunks_stale") or out.get(u, {}).get("needs_run") or behind.get(u)
        }
        behind[name] = ups | set().union(*(behind.get(u, set()) for u in UPSTREAM[name]))
        if behind[name] and "chunks_total" in out[name]:
            out[name]["upstream_stale"] = sorted(behind[name], key=ORDER.index)
    return out


def run(
    config,
    store="stardiffuse.zarr",
    client=None,
    stages: Iterable[str] | None = None,
    console: Console | None = None,
) -> RunSummary:
    """Run the pipeline: every requested stage (default: all built ones), in order.

    Parameters
    ----------
    config : tasks.config.Config
        Validated configuration (see :func:`tasks.config.load_config`).
    store : path
        Zarr v3 store to bring up to date.
    client : distributed.Client, optional
        Dask client; ``None`` computes chunks in this process.
    stages : iterable of str, optional
        Stage names; their upstream stages are brought up to date first.
    console : rich.console.Console, optional
        Progress display; ``None`` for silence.

    Returns
    -------
    RunSummary
        Per stage: chunks total, chunks computed and seconds.
    """
    from tasks.config import check_paths
    from tasks.stages import STAGES, resolve

    names = resolve(stages)
    check_paths(config)
    if client is not None:
        from tasks.cluster import LazyClient

        if isinstance(client, LazyClient) and not client.started:
            client.stages = tuple(names)  # what its workers warm up once it starts
    results: dict[str, StageResult] = {}
    current = "lock"
    try:
        with cstore.store_lock(store):
            for name in names:
                current = name
                results[name] = run_stage(STAGES[name], config, store, client, console)
            current = "metadata"
            cstore.consolidate(store)
    except OSError as e:
        if e.errno not in _STORAGE_ERRNOS:
            raise
        raise cstore.StoreError(
            f"cannot write to store {store} ({os.strerror(e.errno)}, during {current}): every chunk recorded "
            f"before this is intact and the next run computes only what is missing; "
            f"{_STORAGE_ERRNOS[e.errno]}"
        ) from None
    return RunSummary(store=str(store), stages=results)


_STORAGE_ERRNOS = {
    errno.ENOSPC: "free disk space (or use another --store) and rerun",
    errno.EDQUOT: "free quota (or use another --store) and rerun",
    errno.EROFS: "the file system is read-only: use a writable --store",
    errno.EACCES: "you may not write there: fix the permissions or use another --store",
    errno.EPERM: "you may not write there: fix the permissions or use another --store",
}
