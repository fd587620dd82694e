"""Throughput of the whole yields stage: templates per second per core.

Builds a templates cube (masses 0.1-25 Msun, two metallicities) and the xsec cube on the paper
grids, then times the real ``yields`` stage (read templates, both scenarios, both messengers,
write Zarr) in-process (one core) and on a 2-worker LocalCluster, in one run.

Goal (issue #4): >= 200 templates / s / core, so 1e5 templates take < 5 min on 2 cores.

    python benchmarks/bench_yields_stage.py --masses 12
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np

import cube
from tasks.cluster import make_client
from tasks.config import Config, load_preset
from tasks.runner import run
from tasks.stages import STAGES


def _config(n_m: int) -> Config:
    d = load_preset("paper").model_dump()
    d["templates"]["masses"] = sorted({float(f"{m:.4g}") for m in np.geomspace(0.1, 25.0, n_m)} | {1.0})
    d["templates"]["metallicities"] = [0.002, 0.02]
    d["templates"]["snapshots_per_stage"] = {"MS": 10, "RGB": 4, "CHeB": 4, "EAGB": 2, "TPAGB": 2}
    d["templates"]["chunk"] = 64
    d["yields"]["chunk"] = 16  # many chunks, as in a paper-size run (87k models in 342 chunks)
    return Config.model_validate(d)


def _warm_up() -> None:
    from tasks.kernels.luminosity import template_luminosity  # noqa: F401 - import cost only
    import tasks.stages.yields  # noqa: F401


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--masses", type=int, default=12)
    args = ap.parse_args()
    cfg = _config(args.masses)
    with tempfile.TemporaryDirectory() as tmp:
        base = f"{tmp}/base.zarr"
        run(cfg, base, stages=["xsec", "templates"])
        tpl = cube.open(base, "templates")
        n = tpl.sizes["model"]
        n_ms = int(((tpl.stage == "MS") & (tpl.mass_init <= cfg.mirroring.max_mass)).sum())
        shutil.copytree(base, f"{tmp}/local.zarr")
        # The first call of the compiled mirroring kernel in a process compiles it (or loads
        # numba's cache): a one-off per process, timed apart from the throughput.
        t0 = time.perf_counter()
        STAGES["yields"].plan(cfg, base, None)
        t_plan_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        STAGES["yields"].plan(cfg, base, None)
        t_plan = time.perf_counter() - t0
        t0 = time.perf_counter()
        run(cfg, base, stages=["yields"])
        t_sync = time.perf_counter() - t0
        with make_client("local", 2) as client:
            # Worker processes import numba, astropy and the kernels once: a start-up cost
            # that a long run pays once per worker, excluded here like the cluster start.
            client.run(_warm_up)
            t0 = time.perf_counter()
            run(cfg, f"{tmp}/local.zarr", client=client, stages=["yields"])
            t_local = time.perf_counter() - t0
        n_e = cube.open(base, "yields").sizes["energy"]
    print(f"templates: {n} ({n_ms} main-sequence <= {cfg.mirroring.max_mass} Msun need the mirroring model); "
          f"energy points {n_e}, E_p points {len(cfg.xsec.E_p.values())}")
    print(f"planning (solar calibration, fingerprints): {t_plan:.2f} s warm, {t_plan_cold:.2f} s with the "
          f"first kernel call of the process")
    print(f"in-process (1 core):      {t_sync:7.1f} s -> {n / t_sync:7.1f} templates/s/core")
    print(f"LocalCluster (2 workers): {t_local:7.1f} s -> {n / t_local / 2:7.1f} templates/s/core "
          f"(speed-up {t_sync / t_local:.2f}x)")
    rate = n / t_sync
    print(f"goal >= 200 templates/s/core: {'met' if rate >= 200 else 'NOT met'}; "
          f"1e5 templates with this mix on 2 cores: {1e5 / (n / t_local) / 60:.1f} min")


if __name__ == "__main__":
    main()
