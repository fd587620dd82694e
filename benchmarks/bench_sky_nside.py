"""The ``sky`` stage at nside 1024 against nside 256, paper scale (issue #17: scale beyond the paper).

On a scratch store holding only the paper store's ``emissivity`` group and its ledger (what
the sky stage reads), for each nside in ``--nsides``, in this one run:

1. ``prepare`` (pixel centres) and ``plan`` of the paper preset with ``sky.nside`` set, and the
   empty group written (coordinates and metadata), timed in this process;
2. ``--chunks`` chunks spread evenly over the map (RING order, so over latitude) computed and
   written on a fresh ``LocalCluster`` of ``--workers`` single-threaded workers, exactly as the
   runner does (:func:`tasks.runner._compute_and_write`, payload scattered once per worker):
   wall and CPU seconds of each chunk, and each worker's peak RSS (VmHWM, the high-water mark of the
   worker process's own address space, which started with the cluster), and the client's;
3. the full-map time extrapolated from the measured chunks: chunks of the map x mean chunk
   wall (as measured, under the machine's load) or CPU (as on idle cores) / workers, plus the
   plan, setup and one read of L_bar per worker (timed apart, before the chunks: it does not
   depend on nside); the output and the operator cache of the full map
   from the written chunks' bytes and :func:`tasks.stages.sky.map_operator_bytes`;
4. where the source store has a sky map of that nside, whether the chunks equal its pixels bit
   for bit.

By default only a subset is computed: the whole nside-1024 map is 1024 chunks (~16x the
nside-256 sky) and ~72 GB of output, more than a workstation's free disk.  ``--chunks`` at least
the map's chunk count computes the whole map, and then the full-map time is measured, not
extrapolated; ``--discard`` deletes each chunk's files once they are written and their bytes
counted, so that a map larger than the disk can still be computed and written chunk by chunk
as the runner does (the deletion is outside the timed part).  The scratch store is deleted at
the end unless ``--keep``.

    python benchmarks/bench_sky_nside.py --store /tmp/pp/after.zarr --chunks 8 --workers 2
    python benchmarks/bench_sky_nside.py --store PAPER --nsides 1024 --chunks 1024 --discard --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["scratch_store", "measure_nside", "main"]

_ROOT = {"attributes": {}, "zarr_format": 3, "node_type": "group"}


def scratch_store(source: Path, work: Path) -> None:
    """Copy what the sky stage reads from ``source`` into a new store ``work``: the emissivity group and its ledger."""
    work.mkdir(parents=True)
    (work / "zarr.json").write_text(json.dumps(_ROOT))  # not the source's: its consolidated metadata lists every group
    shutil.copytree(source / "emissivity", work / "emissivity")
    shutil.copytree(source / "_ledger" / "emissivity", work / "_ledger" / "emissivity")


def _peak_rss_bytes() -> int:
    """This process's peak resident memory [B]: VmHWM, the high-water mark of its own address space.

    Not ``getrusage``'s max RSS, which a worker process inherits from the client that spawned it
    (Linux keeps it across fork and exec).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed_chunk(store: str, target: str, key, payload, discard_chunk: int | None = None) -> dict:
    """Compute and write one sky chunk as the runner does; its wall and CPU seconds and the process's peak RSS after it.

    With ``discard_chunk`` (the pixels per chunk), the chunk's files of the two map variables
    are counted and deleted after the timed part (a map larger than the disk).
    """
    from tasks.runner import _compute_and_write
    from tasks.stages import sky as S

    t0, c0 = time.perf_counter(), time.process_time()
    _compute_and_write(store, target, "sky", key, S.compute, payload)
    out = {"start": key.start, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
           "peak_rss": _peak_rss_bytes(), "worker": os.getpid(), "done": time.time(), "bytes": 0}
    if discard_chunk is not None:
        # zarr v3 default keys: a pixel chunk's files are under <var>/c/<chunk index>/
        for var in ("intensity", "intensity_stderr"):
            folder = Path(store) / target / var / "c" / str(key.start // discard_chunk)
            out["bytes"] += _du(folder)
            shutil.rmtree(folder, ignore_errors=True)
    return out


def _timed_read(store: str, key: str, modes: dict) -> float:
    """CPU seconds of a worker's one read of L_bar (:func:`tasks.stages.sky.emissivity_inputs`)."""
    from tasks.stages import sky as S

    c0 = time.process_time()
    S.emissivity_inputs(store, key, modes)
    return time.process_time() - c0


def _spread(n_chunks: int, n: int) -> list[int]:
    """``n`` chunk indices spread evenly over ``n_chunks`` (the same sky fractions at every nside)."""
    return sorted({int((k + 0.5) * n_chunks / n) for k in range(min(n, n_chunks))})


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def _same_as(source: Path, store: Path, target: str, nside: int, starts: list[int], chunk: int) -> bool | None:
    """Whether the chunks written equal, bit for bit, the same pixels of ``source``'s sky (``None``: another nside)."""
    import numpy as np
    import zarr

    try:
        ref = zarr.open_group(str(source), path="sky", mode="r", zarr_format=3)
    except Exception:  # noqa: BLE001 - no sky in the source store: nothing to compare
        return None
    if ref.attrs.get("nside") != nside:
        return None
    got = zarr.open_group(str(store), path=target, mode="r", zarr_format=3)
    return all(np.array_equal(ref[v][a : a + chunk], got[v][a : a + chunk])
               for v in ("intensity", "intensity_stderr") for a in starts)


def measure_nside(store: Path, nside: int, n_chunks: int, workers: int, source: Path | None = None,
                  discard: bool = False) -> dict:
    """Plan, setup and ``n_chunks`` spread chunks of the paper sky at ``nside``; see the module docstring.

    With ``source`` (the store the emissivity came from), ``same_as_source`` says whether the
    computed chunks equal its sky's, bit for bit, when it has a map of this nside (not with
    ``discard``, which deletes each chunk once written).
    """
    from distributed import as_completed

    from cube.fingerprint import chunk_keys
    from cube.schema import apply_metadata
    from cube.store import open_group_if_exists, setup_group
    from tasks.cluster import make_client
    from tasks.config import load_preset, with_overrides
    from tasks.stages import sky as S

    cfg = with_overrides(load_preset("paper"), {"sky.nside": nside})
    cache_before = _du(store / "_cache" / "sky_operator")
    grid = open_group_if_exists(store, "emissivity", dask=False).sizes
    target = f"sky_nside{nside}"
    t0 = time.perf_counter()
    S.prepare(cfg, store)
    t1 = time.perf_counter()
    plan = S.plan(cfg, store)
    t2 = time.perf_counter()
    template = apply_metadata(plan.template, S.SCHEMA)
    n_pix = template.sizes["pixel"]
    setup_group(store, target, template, "pixel", plan.chunk)
    t3 = time.perf_counter()
    keys = chunk_keys("sky", "pixel", n_pix, plan.chunk)
    chosen = [keys[i] for i in _spread(len(keys), n_chunks)]
    client_rss = _peak_rss_bytes()
    payload, chunk, notes = plan.payload, plan.chunk, plan.notes
    del template, plan  # the client keeps what a run keeps after setup: the payload
    with make_client("local", workers) as client:
        base = client.run(_peak_rss_bytes)
        shared = client.scatter(payload, broadcast=True, hash=False)
        # each worker reads L_bar once (the emissivity cube, nside-independent): timed apart
        los = payload.los
        t_read = client.run(_timed_read, str(store), los["emissivity_key"], los["modes"])
        t4 = time.perf_counter()
        futures = [client.submit(_timed_chunk, str(store), target, k, shared, chunk if discard else None, pure=False)
                   for k in chosen]
        chunks = []
        for future in as_completed(futures):
            chunks.append(future.result())
            if len(chunks) % 64 == 0 or len(chunks) == len(chosen):
                print(f"nside {nside}: {len(chunks)}/{len(chosen)} chunks, {time.perf_counter() - t4:.0f} s", flush=True)
        t5 = time.perf_counter()
        peaks = client.run(_peak_rss_bytes)
    mean_wall = sum(c["wall"] for c in chunks) / len(chunks)
    mean_cpu = sum(c["cpu"] for c in chunks) / len(chunks)
    fixed = t3 - t0 + max(t_read.values())
    # the map variables' bytes, not the coordinates'
    written = sum(c["bytes"] for c in chunks) if discard else sum(_du(store / target / v) for v in ("intensity", "intensity_stderr"))
    whole = len(chosen) == len(keys)
    return {
        "nside": nside,
        "pixels": n_pix,
        "pixels_per_chunk": chunk,
        "chunks_of_map": len(keys),
        "chunks_measured": len(chosen),
        "chunk_starts": [k.start for k in chosen],
        "operators_cached": payload.los["operator_key"] is not None,
        "notes": notes,
        "prepare_s": t1 - t0,
        "plan_s": t2 - t1,
        "setup_s": t3 - t2,
        "subset_wall_s": t5 - t4,
        # the whole map computed: its time measured (chunks + plan, setup and the L_bar reads)
        "measured_map_wall_s": t5 - t4 + fixed if whole else None,
        "measured_map_cpu_s": sum(c["cpu"] for c in chunks) if whole else None,
        "chunk_wall_s": [c["wall"] for c in chunks],
        "chunk_cpu_s": [c["cpu"] for c in chunks],
        "mean_chunk_wall_s": mean_wall,
        "mean_chunk_cpu_s": mean_cpu,
        "lbar_read_cpu_s": max(t_read.values()),
        "worker_rss_before_GB": sorted(v / 1e9 for v in base.values()),
        "worker_peak_rss_GB": sorted(v / 1e9 for v in peaks.values()),
        # per worker, its peak after each of its chunks in turn: flat if memory does not build up over chunks
        "worker_peak_rss_after_each_chunk_GB": [
            [round(c["peak_rss"] / 1e9, 3) for c in sorted(chunks, key=lambda c: c["done"]) if c["worker"] == w]
            for w in sorted({c["worker"] for c in chunks})
        ],
        "client_peak_rss_after_plan_GB": client_rss / 1e9,
        # as measured (the machine's load included), and as if each worker had its own core
        "extrapolated_map_wall_s": len(keys) * mean_wall / workers + fixed,
        "extrapolated_map_idle_s": len(keys) * mean_cpu / workers + fixed,
        "extrapolated_map_cpu_s": len(keys) * mean_cpu,
        "output_bytes_per_chunk": written / len(chosen),
        "extrapolated_output_GB": written / len(chosen) * len(keys) / 1e9,
        "map_operator_GB": S.map_operator_bytes(payload.los["modes"], grid["R"], grid["z"], cfg.sky.steps, n_pix) / 1e9,
        "same_as_source": (_same_as(source, store, target, nside, [k.start for k in chosen], chunk)
                           if source and not discard else None),
        "operator_cache_written_GB": (_du(store / "_cache" / "sky_operator") - cache_before) / 1e9,
    }


def _print(rows: list[dict], workers: int) -> None:
    print(f"| nside | pixels | chunks | measured | plan + setup [s] | chunk wall / CPU [s] | map [s] extrapolated, "
          f"{workers} workers: as loaded / idle cores | map [s] measured | map CPU [s] | worker peak RSS [GB] | "
          f"output [GB] | operators |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ops = f"{r['map_operator_GB']:.2f} GB, " + ("cached" if r["operators_cached"] else "not cached")
        measured = "-" if r["measured_map_wall_s"] is None else f"{r['measured_map_wall_s']:.0f}"
        print(f"| {r['nside']} | {r['pixels']:,} | {r['chunks_of_map']} | {r['chunks_measured']} | "
              f"{r['prepare_s'] + r['plan_s']:.2f} + {r['setup_s']:.2f} | {r['mean_chunk_wall_s']:.2f} / "
              f"{r['mean_chunk_cpu_s']:.2f} | {r['extrapolated_map_wall_s']:.0f} / {r['extrapolated_map_idle_s']:.0f} | "
              f"{measured} | {r['extrapolated_map_cpu_s']:.0f} | "
              f"{max(r['worker_peak_rss_GB']):.2f} | {r['extrapolated_output_GB']:.1f} | {ops} |")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"nside {b['nside']} / {a['nside']}: map CPU x{b['extrapolated_map_cpu_s'] / a['extrapolated_map_cpu_s']:.1f}, "
              f"chunk CPU x{b['mean_chunk_cpu_s'] / a['mean_chunk_cpu_s']:.2f}, worker peak RSS "
              f"x{max(b['worker_peak_rss_GB']) / max(a['worker_peak_rss_GB']):.2f}, plan + setup "
              f"x{(b['prepare_s'] + b['plan_s'] + b['setup_s']) / (a['prepare_s'] + a['plan_s'] + a['setup_s']):.1f}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, required=True, help="a paper-preset store with the emissivity group (read only)")
    p.add_argument("--nsides", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--chunks", type=int, default=8, help="chunks computed per nside, spread over the map")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scratch", type=Path, default=None, help="directory of the scratch store (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the scratch store")
    p.add_argument("--discard", action="store_true",
                   help="delete each chunk's files once written and counted (a map larger than the free disk)")
    args = p.parse_args(argv)
    import healpy  # noqa: F401 - imported once before any timing (it imports matplotlib and astropy)

    tmp = Path(tempfile.mkdtemp(prefix="bench-sky-nside-", dir=args.scratch))
    try:
        work = tmp / "w.zarr"
        scratch_store(args.store, work)
        rows = []
        for nside in args.nsides:
            rows.append(measure_nside(work, nside, args.chunks, args.workers, args.store, args.discard))
            print(json.dumps(rows[-1]), flush=True)
        _print(rows, args.workers)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
