"""What deciding costs: no-op plan time against a fresh run, and row fingerprints per second.

Two parts, each printed as ratios measured in this one run:

1. ``--preset paper`` (or ``quick``): a fresh run of every stage into a new
   store on a local cluster (stage seconds), then the same command again with nothing
   changed (no-op), and ``status``; per stage: fresh seconds, no-op seconds and their
   ratio.  Goal (issue #7): no-op < 1% of the fresh run, < 5 s for the paper preset.
   ``--store PATH --no-fresh`` times only the no-op part on a store already built.
2. A synthetic plan of ``--rows`` rows (fingerprints only, with the shapes of a
   templates plan: a 400-point shared grid, ten per-row columns): goal 1e6 rows < 5 s.

    python benchmarks/bench_planning.py --preset paper --workers 2
    python benchmarks/bench_planning.py --preset paper --store /tmp/paper.zarr --no-fresh
    python benchmarks/bench_planning.py --rows 1000000 --preset none
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

STAGES = ("xsec", "templates", "yields", "population", "emissivity", "sky", "sed")


def synthetic_rows(n: int) -> float:
    """Seconds to fingerprint ``n`` rows shaped like a templates plan."""
    from cube.fingerprint import Fingerprinter, combine

    rng = np.random.default_rng(1)
    columns = {
        "mass_init": rng.uniform(0.1, 25, n),
        "metallicity": rng.uniform(1e-4, 0.03, n),
        "age": rng.uniform(0, 1.4e10, n),
        "stage": np.array(["MS", "RGB", "CHeB", "EAGB", "TPAGB"])[rng.integers(0, 5, n)],
        "duration": rng.uniform(0, 1e9, n),
        "R_star": rng.uniform(1e10, 1e14, n),
        "M_star": rng.uniform(0.1, 25, n),
        "L_star": rng.uniform(1e-3, 1e5, n),
        "Teff": rng.uniform(2e3, 5e4, n),
        "source": np.full(n, "generator"),
    }
    t0 = time.perf_counter()
    fp = Fingerprinter(code="templates/1", structure={"alpha_mlt": 1.8, "radius": np.linspace(0, 1, 400)})
    rows = fp.rows(**columns)
    chunks = [combine(rows[s : s + 256]) for s in range(0, n, 256)]
    dt = time.perf_counter() - t0
    assert len(rows) == n and len(chunks) == -(-n // 256)
    return dt


def _timed_run(config, store, client, stages) -> tuple[float, dict]:
    from tasks.runner import run

    t0 = time.perf_counter()
    summary = run(config, store, client=client, stages=list(stages))
    return time.perf_counter() - t0, summary.stages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper", choices=["paper", "quick", "none"])
    ap.add_argument("--store", help="store to use (default: a new temporary one)")
    ap.add_argument("--no-fresh", action="store_true", help="time only the no-op run on an existing --store")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--stages", default=",".join(STAGES), help="stages to time (default all)")
    ap.add_argument("--fresh-seconds", help="with --no-fresh: stage=seconds,... of a fresh run measured before")
    args = ap.parse_args()
    stages = tuple(args.stages.split(","))

    if args.preset != "none":
        from tasks.cluster import make_client
        from tasks.config import load_preset
        from tasks.runner import stage_status
        from tasks.stages import STAGES as ALL

        config = load_preset(args.preset)
        with tempfile.TemporaryDirectory() as tmp:
            store = args.store or f"{tmp}/bench.zarr"
            with make_client("local", args.workers) as client:
                fresh = None
                if not args.no_fresh:
                    wall, fresh = _timed_run(config, store, client, stages)
                    print(f"fresh run ({args.preset}, {args.workers} workers): {wall:.1f} s wall")
                wall_noop, noop = _timed_run(config, store, client, stages)
            t0 = time.perf_counter()
            status = {name: stage_status(ALL[name], config, store) for name in stages}
            t_status = time.perf_counter() - t0
        given = dict(kv.split("=") for kv in args.fresh_seconds.split(",")) if args.fresh_seconds else {}
        fresh_s = {k: (fresh[k].seconds if fresh else float(given.get(k, "nan"))) for k in stages}
        print(f"{'stage':<10} {'chunks':>7} {'fresh s':>9} {'no-op s':>9} {'no-op/fresh':>12}")
        for name in stages:
            f = fresh_s[name]
            n = noop[name]
            assert n.chunks_computed == 0, f"{name}: the no-op run computed {n.chunks_computed} chunks"
            print(f"{name:<10} {n.chunks_total:>7} {f:>9.1f} {n.seconds:>9.2f} {n.seconds / f:>12.4f}")
        tf = sum(fresh_s.values())
        tn = sum(noop[s].seconds for s in stages)
        print(f"{'all':<10} {'':>7} {tf:>9.1f} {tn:>9.2f} {tn / tf:>12.4f}   (no-op run wall {wall_noop:.2f} s)")
        stale = sum(s["chunks_stale"] for s in status.values())
        print(f"status: {t_status:.2f} s ({t_status / tf:.4f} of the fresh run), {stale} stale chunks")

    if args.rows:
        dt = synthetic_rows(args.rows)
        print(f"synthetic plan: {args.rows:.2g} row fingerprints + chunk fingerprints in {dt:.2f} s "
              f"({dt / args.rows * 1e6:.2f} us/row)")


if __name__ == "__main__":
    main()
