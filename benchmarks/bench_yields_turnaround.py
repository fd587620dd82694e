"""Turnaround of the yields stage after a change that touches only the yields (issue #17).

Builds once (reused when it exists) a store with the xsec and templates cubes of the paper
preset (its grids, quadrature, snapshots per stage and yields chunk of 256 models) for a subset
of its library: ``--masses`` masses evenly spaced among the preset's 120 (plus 1 Msun, for the
Sun) and ``--metallicities`` of its 16. Then, for each ``--code`` checkout, in a fresh
subprocess on its own copy of that store, in-process (one core, no cluster):

1. the yields stage from scratch (it fills the cache of L_ball and L_mirror where the code has
   one);
2. the yields stage again with ``mirroring.f_B_high: 0.5`` (the measured turnaround).

For each it prints the chunks recomputed, the models that went through the mirroring kernel
(:func:`tasks.kernels.mirroring.mirror_efficiency`, counted where the luminosity module calls it,
the Sun's calibration included), the stage's wall and CPU seconds and the kernel's seconds per
model, and at the end the ratio of the turnaround of the first checkout to that of each other
one. The checkouts run back to back, so that machine load hits them alike.

    python benchmarks/bench_yields_turnaround.py --store /tmp/turnaround.zarr \\
        --code /work/main --code . [--masses 40] [--metallicities 4]
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# The configuration travels as overrides of the paper preset, validated by each checkout's own
# code (a checkout may not know another's keys).
CONFIG = r"""
def config(over):
    from tasks.config import Config, load_preset

    d = load_preset("paper").model_dump()
    for section, values in over.items():
        d[section].update(values)
    return Config.model_validate(d)
"""

BUILD = CONFIG + r"""
import json, sys
from tasks.runner import run
run(config(json.loads(sys.argv[1])), sys.argv[2], stages=["xsec", "templates"])
"""

DRIVER = CONFIG + r"""
import json, sys, time
from tasks.kernels import luminosity
from tasks.runner import run

base, changed = (config(json.loads(a)) for a in sys.argv[1:3])
store = sys.argv[3]
count = {"models": 0, "seconds": 0.0}
kernel = luminosity.mirror_efficiency

def counting(radius, rho, *args, **kwargs):
    t0 = time.perf_counter()
    out = kernel(radius, rho, *args, **kwargs)
    count["seconds"] += time.perf_counter() - t0
    count["models"] += len(rho)
    return out

luminosity.mirror_efficiency = counting
out = {}
for name, cfg in (("fresh", base), ("f_B_high", changed)):
    count.update(models=0, seconds=0.0)
    t0, c0 = time.perf_counter(), time.process_time()
    res = run(cfg, store, stages=["yields"]).stages["yields"]
    out[name] = {
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "stage_seconds": res.seconds,
        "chunks": res.chunks_computed,
        "chunks_total": res.chunks_total,
        "kernel_models": count["models"],
        "kernel_seconds": count["seconds"],
    }
print(json.dumps(out))
"""


def _env(code: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code))
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[v] = "1"
    return env


def configs(n_masses: int, n_z: int) -> tuple[dict, dict]:
    """Overrides of the paper preset for the library (sync) and the same with ``f_B_high: 0.5``."""
    sys.path.insert(0, str(ROOT))
    from tasks.config import load_preset

    t = load_preset("paper").templates
    pick = lambda v, n: [v[i] for i in np.unique(np.round(np.linspace(0, len(v) - 1, n)).astype(int))]  # noqa: E731
    base = {
        "run": {"cluster": "sync"},
        "templates": {
            "masses": sorted(set(pick(list(t.masses), n_masses)) | {1.0}),
            "metallicities": sorted(set(pick(list(t.metallicities), n_z)) | {0.02}),
        },
    }
    return base, {**base, "mirroring": {"f_B_high": 0.5}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "bench_yields_turnaround.zarr"))
    ap.add_argument("--code", action="append", help="checkout to time (repeat; default this one)")
    ap.add_argument("--masses", type=int, default=40)
    ap.add_argument("--metallicities", type=int, default=4)
    args = ap.parse_args()
    codes = [Path(c).resolve() for c in (args.code or [ROOT])]
    base, changed = configs(args.masses, args.metallicities)
    store = Path(args.store)
    if not store.exists():
        subprocess.run([sys.executable, "-c", BUILD, json.dumps(base), str(store)], check=True, cwd=ROOT, env=_env(ROOT))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, code in enumerate(codes):
            work = Path(tmp) / f"{i}.zarr"
            shutil.copytree(store, work)
            r = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(base), json.dumps(changed), str(work)],
                               check=True, cwd=code, env=_env(code), capture_output=True, text=True)
            results.append(json.loads(r.stdout.strip().splitlines()[-1]))
            shutil.rmtree(work)
    t = base["templates"]
    print(f"library: {len(t['masses'])} masses x {len(t['metallicities'])} metallicities of the paper preset; "
          f"one core, in-process")
    for code, res in zip(codes, results):
        for name, r in res.items():
            per = 1e3 * r["kernel_seconds"] / r["kernel_models"] if r["kernel_models"] else float("nan")
            print(f"{str(code):<28} {name:<9} chunks {r['chunks']:4d}/{r['chunks_total']:<4d} "
                  f"kernel models {r['kernel_models']:6d} ({per:5.1f} ms/model)  "
                  f"wall {r['wall']:7.1f} s  cpu {r['cpu']:7.1f} s  stage {r['stage_seconds']:7.1f} s")
    first = results[0]["f_B_high"]
    for code, res in zip(codes[1:], results[1:]):
        r = res["f_B_high"]
        print(f"f_B_high turnaround, {codes[0]} / {code}: wall x{first['wall'] / r['wall']:.2f}, "
              f"cpu x{first['cpu'] / r['cpu']:.2f}")


if __name__ == "__main__":
    main()
