"""Throughput of the templates stage: models generated per second per core.

Runs the real stage (COSMIC tracks + near-surface structure model + Zarr writes) on a grid of
``--masses`` log-spaced masses 0.1-25 Msun x ``--metallicities`` Z values, first in-process
(one core), then on a 2-worker LocalCluster, in one run so the ratio is meaningful.

Goal (issue #3): >= 50 models / s / core, so that a 1e5-model library takes < 20 min on 2 cores.

    python benchmarks/bench_templates.py --masses 40 --metallicities 4
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from tasks.cluster import make_client
from tasks.config import Config, load_preset
from tasks.runner import run


def _config(n_m: int, n_z: int) -> Config:
    d = load_preset("paper").model_dump()
    d["templates"]["masses"] = [float(f"{m:.4g}") for m in np.geomspace(0.1, 25.0, n_m)] + [1.0]
    d["templates"]["metallicities"] = [float(f"{z:.4g}") for z in np.geomspace(1e-4, 0.03, n_z)] + [0.02]
    return Config.model_validate(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--masses", type=int, default=40)
    ap.add_argument("--metallicities", type=int, default=4)
    args = ap.parse_args()
    cfg = _config(args.masses, args.metallicities)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run(cfg, f"{tmp}/sync.zarr", stages=["templates"]).stages["templates"]
        t_sync = time.perf_counter() - t0
        import cube

        n = cube.open(f"{tmp}/sync.zarr", "templates").sizes["model"]
        # Track caches live in each store, so this run redoes tracks and profiles like a fresh one.
        with make_client("local", 2) as client:
            t0 = time.perf_counter()
            run(cfg, f"{tmp}/local.zarr", client=client, stages=["templates"])
            t_local = time.perf_counter() - t0
        t0 = time.perf_counter()
        run(cfg, f"{tmp}/sync.zarr", stages=["templates"])
        t_rerun = time.perf_counter() - t0
    print(f"models: {n} ({len(cfg.templates.masses)} masses x {len(cfg.templates.metallicities)} Z, "
          f"{res.chunks_total} chunks, radius points {cfg.templates.radius_points})")
    print(f"in-process (1 core):       {t_sync:7.1f} s  -> {n / t_sync:7.1f} models/s/core")
    print(f"LocalCluster (2 workers):  {t_local:7.1f} s  -> {n / t_local / 2:7.1f} models/s/core, "
          f"speed-up {t_sync / t_local:.2f}x on 2 cores")
    print(f"no-change rerun:           {t_rerun:7.1f} s  ({t_rerun / t_sync:.3f} of a fresh run)")
    print(f"goal >= 50 models/s/core: {'met' if n / t_sync >= 50 else 'NOT met'}; "
          f"1e5 models on 2 cores would take {1e5 / (n / t_local) / 60:.1f} min")


if __name__ == "__main__":
    main()
