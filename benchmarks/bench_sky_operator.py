"""Sky and sed stage times with the cached line-of-sight operators (issue #17), before and after.

On a copy of a store built with ``--preset`` (every stage), measured in this run:

1. fresh: the ``sky`` and ``sed`` groups and their cached operators removed, the two stages run
   (the operators are built as the rays are integrated, and written to the store's cache);
2. yields-only rerun: ``mirroring.f_B_high`` changed (new yields and emissivity, same geometry),
   the two stages run again: with the cache, one matrix product per block and no ray.

Prints the wall seconds of each stage and, when the chunks run in this process (``--workers 0``,
the default), the CPU seconds of its chunks' ``compute`` (robust on a machine shared with other
jobs), the ratio rerun / fresh and the size of the operator cache.
With ``--baseline DIR`` the same measurement runs first with the code in ``DIR`` (for example
``/work/main``) on its own copy, and the ratios after / before are printed too.

With ``--paper-chunk`` (no store needed): one sky chunk of the paper preset (12,288 pixels of
nside 256, 800 nodes per ray, 121 R nodes, 404 columns of a synthetic L_bar), integrated
directly, through an empty cache (build and write) and through the written entry; its size
times the chunks of the map is the paper-scale cache.

    python benchmarks/bench_sky_operator.py --store /tmp/q.zarr --preset quick --baseline /work/main
    python benchmarks/bench_sky_operator.py --paper-chunk
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["measure", "paper_chunk", "cache_bytes", "main"]

_STAGES = ("sky", "sed")
_CACHES = ("sky_operator", "sed_operator")


def cache_bytes(store: Path) -> dict[str, int]:
    """Bytes of the store's cached operators per kind, and of the whole store."""
    size = lambda d: sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) if d.is_dir() else 0  # noqa: E731
    return {**{k: size(store / "_cache" / k) for k in _CACHES}, "store": size(store)}


def _drop(store: Path) -> None:
    """Remove the maps, region spectra and cached operators: the next run computes them afresh."""
    for g in _STAGES:
        for d in (store / g, store / "_ledger" / g):
            shutil.rmtree(d, ignore_errors=True)
    for k in _CACHES:
        shutil.rmtree(store / "_cache" / k, ignore_errors=True)


def measure(store: Path, preset: str, f_B_high: float, workers: int) -> dict:
    """Wall and CPU seconds of sky and sed, fresh and after a yields-only change, on a copy of ``store``.

    CPU seconds are those of the stage's ``compute`` calls (the chunks' work, without planning
    and writing), measured only with ``workers == 0``.
    """
    from tasks.cluster import make_client
    from tasks.config import load_preset, with_overrides
    from tasks.runner import run

    base = load_preset(preset)
    changed = with_overrides(base, {"mirroring.f_B_high": f_B_high})
    if changed.mirroring.f_B_high == base.mirroring.f_B_high:
        raise SystemExit(f"--f-B-high {f_B_high} is the preset's own value: choose another")
    with tempfile.TemporaryDirectory(prefix="bench-sky-operator-") as tmp:
        work = Path(tmp) / "w.zarr"
        shutil.copytree(store, work)
        _drop(work)
        out = {}
        with make_client("local", workers) if workers else _nothing() as client:
            for label, cfg in (("fresh", base), ("yields_only", changed)):
                run(cfg, work, client=client, stages=["emissivity"])
                out[label] = {}
                for g in _STAGES:
                    with _timed_compute(g) as cpu:
                        res = run(cfg, work, client=client, stages=[g]).stages[g]
                    out[label][g] = {**res.as_json(), "cpu_seconds": cpu[0]}
        out["bytes"] = cache_bytes(work)
    return out


@contextlib.contextmanager
def _timed_compute(name: str):
    """Sum the CPU seconds of the ``compute`` calls of stage ``name`` run in this process (into ``[0.0]``)."""
    import dataclasses
    import time

    from tasks.stages import STAGES

    stage, total = STAGES[name], [0.0]

    def compute(start, stop, payload):
        t0 = time.process_time()
        try:
            return stage.compute(start, stop, payload)
        finally:
            total[0] += time.process_time() - t0

    STAGES[name] = dataclasses.replace(stage, compute=compute)
    try:
        yield total
    finally:
        STAGES[name] = stage


def paper_chunk(chunk_index: int = 31, n_E: int = 101) -> dict:
    """Seconds of one paper-scale sky chunk: direct, building its cache entry, reading it; entry bytes."""
    import time

    import healpy as hp
    import numpy as np

    from tasks.config import load_preset
    from tasks.kernels.galaxy import COMPONENTS
    from tasks.stages import sky as S

    cfg = load_preset("paper")
    g, s = cfg.galaxy, cfg.sky
    R, z = np.linspace(0.0, g.R_max, g.R_points), np.linspace(0.0, g.z_max, g.z_points)
    modes = S.component_modes(g)
    rng = np.random.default_rng(1)
    L = {c: rng.random((R.size, 1, 2, 2, n_E)) for c in COMPONENTS}  # flat in z: only [:, 0] is read
    lbar = S.lbar_operands(R, z, np.geomspace(0.1, 1e4, n_E), L, {c: 0.01 * v for c, v in L.items()}, modes)
    n_pix = hp.nside2npix(s.nside)
    start, stop = chunk_index * s.chunk, min((chunk_index + 1) * s.chunk, n_pix)
    l, b = hp.pix2ang(s.nside, np.arange(start, stop), lonlat=True)
    out = {"pixels": stop - start, "chunks": -(-n_pix // s.chunk), "columns": 4 * n_E, "R_nodes": R.size}
    with tempfile.TemporaryDirectory(prefix="bench-sky-operator-") as tmp:
        los = {"store": tmp, "galaxy": g, "z_obs": s.z_observer, "steps": s.steps, "modes": modes, "kappa": None,
               "operator_key": S.operator_key(cfg, R, z)}
        entry = S.sky_entry(los, s.nside, start, stop)
        results = {}
        for label, f in (("direct", lambda: S.galaxy_intensity(l, b, los, lbar)),
                         ("build_and_write", lambda: S.cached_intensity(l, b, los, lbar, entry)),
                         ("read_and_apply", lambda: S.cached_intensity(l, b, los, lbar, entry))):
            t0 = time.perf_counter()
            results[label] = f()
            out[f"{label}_seconds"] = time.perf_counter() - t0
        out["entry_bytes"] = entry.stat().st_size
    out["same_bits"] = all(np.array_equal(x, y) for r in results.values() for x, y in zip(r, results["direct"]))
    return out


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _baseline(code: Path, args) -> dict:
    """:func:`measure` with the code in ``code`` (its tasks package first on the path), in a subprocess."""
    cmd = [sys.executable, __file__, "--store", str(args.store), "--preset", args.preset, "--f-B-high", str(args.f_B_high),
           "--workers", str(args.workers), "--json"]
    env = {**os.environ, "PYTHONPATH": str(code)}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _table(label: str, m: dict) -> None:
    print(f"{label}:")
    print("| stage | fresh wall / CPU [s] | yields-only rerun wall / CPU [s] | rerun / fresh (CPU) | operators cached in rerun |")
    print("|---|---:|---:|---:|---:|")
    for g in _STAGES:
        f, r = m["fresh"][g], m["yields_only"][g]
        cached = r.get("los_operators_cached", "-")
        print(f"| {g} | {f['seconds']:.2f} / {f['cpu_seconds']:.2f} | {r['seconds']:.2f} / {r['cpu_seconds']:.2f} | "
              f"{r['cpu_seconds'] / f['cpu_seconds']:.3f} | {cached}/{r['chunks_computed']} |")
    b = m["bytes"]
    print(f"operator cache: sky {b['sky_operator'] / 2**20:.1f} MiB, sed {b['sed_operator'] / 2**20:.1f} MiB; "
          f"store {b['store'] / 2**20:.1f} MiB")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, help="a store built with --preset (every stage)")
    p.add_argument("--preset", default="quick")
    p.add_argument("--f-B-high", type=float, default=0.5, help="mirroring.f_B_high of the rerun (the preset has 0.7)")
    p.add_argument("--workers", type=int, default=0, help="LocalCluster workers; 0 runs the chunks in this process")
    p.add_argument("--baseline", type=Path, help="also measure the code in this directory (e.g. /work/main)")
    p.add_argument("--json", action="store_true", help="print only the measurement as one JSON object")
    p.add_argument("--paper-chunk", action="store_true", help="measure one paper-scale sky chunk instead (no store)")
    args = p.parse_args(argv)
    if args.paper_chunk:
        m = paper_chunk()
        print(json.dumps(m, indent=1))
        print(f"read / direct {m['read_and_apply_seconds'] / m['direct_seconds']:.3f}, build / direct "
              f"{m['build_and_write_seconds'] / m['direct_seconds']:.3f}; cache of the map ~ "
              f"{m['entry_bytes'] * m['chunks'] / 2**20:.0f} MiB ({m['chunks']} chunks)")
        return
    if args.store is None:
        p.error("--store is required (or --paper-chunk)")
    before = _baseline(args.baseline, args) if args.baseline else None
    after = measure(args.store, args.preset, args.f_B_high, args.workers)
    if args.json:
        print(json.dumps(after))
        return
    if before:
        _table(f"before ({args.baseline})", before)
    _table("after (this code)", after)
    if before:
        print("| stage | fresh after / before (wall, CPU) | yields-only rerun after / before (wall, CPU) |")
        print("|---|---:|---:|")
        for g in _STAGES:
            ratio = lambda k, t: after[k][g][t] / before[k][g][t]  # noqa: E731
            print(f"| {g} | {ratio('fresh', 'seconds'):.3f}, {ratio('fresh', 'cpu_seconds'):.3f} | "
                  f"{ratio('yields_only', 'seconds'):.3f}, {ratio('yields_only', 'cpu_seconds'):.3f} |")


if __name__ == "__main__":
    main()
