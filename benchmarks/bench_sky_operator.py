"""Sky and sed stage times with the cached line-of-sight operators (issue #17), before and after.

On a copy of a store built with ``--preset`` (every stage), measured in this run:

1. fresh: the ``sky`` and ``sed`` groups and their cached operators removed, the two stages run
   (the operators are built as the rays are integrated, and written to the store's cache);
2. yields-only rerun: ``mirroring.f_B_high`` changed (new yields and emissivity, same geometry),
   the two stages run again: with the cache, one matrix product per block and no ray.

Prints the seconds of each stage, the ratio rerun / fresh and the size of the operator cache.
With ``--baseline DIR`` the same measurement runs first with the code in ``DIR`` (for example
``/work/main``) on its own copy, and the ratios after / before are printed too.

    python benchmarks/bench_sky_operator.py --store /tmp/q.zarr --preset quick --baseline /work/main
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["measure", "cache_bytes", "main"]

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
    """Seconds of sky and sed, fresh and after a yields-only change, on a copy of ``store``."""
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
                res = run(cfg, work, client=client, stages=list(_STAGES)).stages
                out[label] = {g: res[g].as_json() for g in _STAGES}
        out["bytes"] = cache_bytes(work)
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
    print("| stage | fresh [s] | yields-only rerun [s] | rerun / fresh | operators cached in rerun |")
    print("|---|---:|---:|---:|---:|")
    for g in _STAGES:
        f, r = m["fresh"][g], m["yields_only"][g]
        cached = r.get("los_operators_cached", "-")
        print(f"| {g} | {f['seconds']:.2f} | {r['seconds']:.2f} | {r['seconds'] / f['seconds']:.3f} | {cached}/{r['chunks_computed']} |")
    b = m["bytes"]
    print(f"operator cache: sky {b['sky_operator'] / 2**20:.1f} MiB, sed {b['sed_operator'] / 2**20:.1f} MiB; "
          f"store {b['store'] / 2**20:.1f} MiB")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, required=True, help="a store built with --preset (every stage)")
    p.add_argument("--preset", default="quick")
    p.add_argument("--f-B-high", type=float, default=0.5, help="mirroring.f_B_high of the rerun (the preset has 0.7)")
    p.add_argument("--workers", type=int, default=0, help="LocalCluster workers; 0 runs the chunks in this process")
    p.add_argument("--baseline", type=Path, help="also measure the code in this directory (e.g. /work/main)")
    p.add_argument("--json", action="store_true", help="print only the measurement as one JSON object")
    args = p.parse_args(argv)
    before = _baseline(args.baseline, args) if args.baseline else None
    after = measure(args.store, args.preset, args.f_B_high, args.workers)
    if args.json:
        print(json.dumps(after))
        return
    if before:
        _table(f"before ({args.baseline})", before)
    _table("after (this code)", after)
    if before:
        print("| stage | fresh after / before | yields-only rerun after / before |")
        print("|---|---:|---:|")
        for g in _STAGES:
            ratio = lambda k: after[k][g]["seconds"] / before[k][g]["seconds"]  # noqa: E731
            print(f"| {g} | {ratio('fresh'):.3f} | {ratio('yields_only'):.3f} |")


if __name__ == "__main__":
    main()
