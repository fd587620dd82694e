"""What ``stardiffuse status`` costs on a library store: imports, plan time per stage, wall time.

Builds (once, reused when it exists) a store with the xsec, templates, yields, population and
emissivity cubes of a library of a few thousand generator models (40 masses 0.1-25 Msun and
1 Msun, x 5 metallicities, the default snapshots per stage) and a coarse Galaxy, with the
paper's sky (nside 256) planned but not run. Then, each in a fresh subprocess (so that
imports count as a user sees them):

0. every stage's ``prepare`` (when the code has one), so that the store holds what a run of
   every stage leaves behind (the sky itself is not computed);
1. ``python -m tasks.cli status --config CFG --store STORE``, wall seconds (best of ``--repeat``);
2. a driver that times ``import tasks.cli, tasks.runner, tasks.stages`` and then
   :func:`tasks.runner.stage_status` per stage, and lists which heavy modules
   (matplotlib, astropy, healpy's plotting) it loaded.

The numbers are comparable between commits: run it on each with the same ``--store``
(the store is rebuilt by the checked-out code only when it is missing).

    python benchmarks/bench_status.py --store /tmp/bench_status.zarr [--repeat 3] [--code CHECKOUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
preset: quick
run:
  cluster: sync
templates:
  masses: {masses}
  metallicities: [0.0001, 0.002, 0.008, 0.02, 0.03]
  snapshots_per_stage: {{MS: 10, RGB: 5, CHeB: 5, EAGB: 3, TPAGB: 3}}
  extra_snapshots: [[1.0, 0.02, 4.57e9]]
  chunk: 64
yields:
  chunk: 64
galaxy:
  stars_per_population: 2000
  batches: 4
  R_points: 11
  z_points: 6
sky:
  nside: 256
"""

STAGES = ("xsec", "templates", "yields", "population", "emissivity", "sky", "sed")

DRIVER = r"""
import json, sys, time
t0 = time.perf_counter()
import tasks.cli, tasks.runner, tasks.stages
from tasks.config import load_config
t_import = time.perf_counter() - t0
config = load_config(sys.argv[1])
plans = {}
for name in tasks.stages.resolve(None):
    t = time.perf_counter()
    try:
        tasks.runner.stage_status(tasks.stages.STAGES[name], config, sys.argv[2])
        plans[name] = time.perf_counter() - t
    except Exception as e:
        plans[name] = f"{time.perf_counter() - t:.3f} ({type(e).__name__})"
heavy = sorted(m for m in ("matplotlib", "astropy", "healpy.visufunc", "healpy.projaxes", "numba", "scipy.sparse")
               if m in sys.modules)
print(json.dumps({"import": t_import, "plan": plans, "loaded": heavy, "total": time.perf_counter() - t0}))
"""


def _env() -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def build(store: Path, cfg: Path) -> None:
    """Run the library and Galaxy stages into ``store`` (skipped when the emissivity cube exists)."""
    if (store / "emissivity").exists():
        return
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tasks.cli", "run", "--config", str(cfg), "--store", str(store),
         "--cluster", "sync", "--stages", "emissivity"],
        check=True, cwd=ROOT, env=_env(),
    )
    print(f"built {store} in {time.perf_counter() - t0:.1f} s")


WARM = r"""
import sys
import tasks.stages
from tasks.config import load_config
config = load_config(sys.argv[1])
for name in tasks.stages.resolve(None):
    prepare = getattr(tasks.stages.STAGES[name], "prepare", None)  # code without prepare steps: nothing to do
    if prepare is not None:
        prepare(config, sys.argv[2], None)
"""


def warm(store: Path, cfg: Path) -> None:
    """Leave the caches a run of every stage would leave (``prepare``), without computing the sky."""
    subprocess.run([sys.executable, "-c", WARM, str(cfg), str(store)], check=True, cwd=ROOT, env=_env())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "bench_status.zarr"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--code", default=None, help="checkout whose code is timed (default this one)")
    args = ap.parse_args()
    global ROOT
    ROOT = Path(args.code).resolve() if args.code else ROOT
    import numpy as np

    store = Path(args.store)
    cfg = store.with_suffix(".yaml")
    # the Sun's track too: the yields stage calibrates the mirroring scenario on it
    masses = sorted({round(float(m), 4) for m in np.geomspace(0.1, 25.0, 40)} | {1.0})
    cfg.write_text(CONFIG.format(masses=masses))
    build(store, cfg)
    warm(store, cfg)

    import zarr

    n_models = zarr.open_group(str(store), path="templates", mode="r", zarr_format=3)["model"].shape[0]
    walls = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tasks.cli", "status", "--config", str(cfg), "--store", str(store)],
                       check=True, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
    drivers = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", DRIVER, str(cfg), str(store)], check=True, cwd=ROOT,
                             env=_env(), capture_output=True, text=True).stdout
        drivers.append(json.loads(out.strip().splitlines()[-1]))
    best = min(drivers, key=lambda d: d["total"])
    print(f"store: {store} ({n_models} models; sky nside 256 planned, not run)")
    print(f"stardiffuse status wall [s]: best {min(walls):.2f} of {', '.join(f'{w:.2f}' for w in walls)}")
    print(f"imports (tasks.cli, tasks.runner, tasks.stages) [s]: {best['import']:.2f}")
    for name in STAGES:
        v = best["plan"].get(name)
        print(f"  plan {name:<11} {v:.3f} s" if isinstance(v, float) else f"  plan {name:<11} {v} s")
    print(f"driver total [s]: {best['total']:.2f}")
    print(f"heavy modules loaded: {', '.join(best['loaded']) or 'none'}")


if __name__ == "__main__":
    main()
