"""Speed of the templates stage, before and after, back to back (issue #17).

For each ``--code`` checkout, in a fresh subprocess, in-process (one core, no cluster), on a
sub-library of the paper preset (its snapshots per stage, radius grid and chunk of 256 models;
``--masses`` masses evenly spaced among the preset's 120, plus 1 Msun for the Sun, and
``--metallicities`` of its 16):

1. the templates stage into a new store: COSMIC tracks evolved, the plan-time Eddington screen,
   every chunk's structure model, the Zarr writes;
2. one chunk of 256 models again (``compute`` of the middle chunk, from the stage's plan).

It prints the models, the stage's wall and CPU seconds, models per CPU second (= per core),
the chunk's CPU seconds and, at the end, the ratio of the first checkout's CPU to each other's
and whether their templates cubes are the same to the last bit (every variable and per-model
coordinate). The checkouts run back to back so that machine load hits them alike; CPU seconds
(``time.process_time``) are the number to compare on a shared machine.

    python benchmarks/bench_templates_turnaround.py --code /path/to/main --code . \\
        [--masses 12] [--metallicities 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

DRIVER = r"""
import json, sys, time
import numpy as np
from tasks.config import Config, load_preset
from tasks.runner import run

over, store = json.loads(sys.argv[1]), sys.argv[2]
d = load_preset("paper").model_dump()
d["templates"].update(over)
cfg = Config.model_validate(d)
w0, c0 = time.perf_counter(), time.process_time()
run(cfg, store, stages=["templates"])
wall, cpu = time.perf_counter() - w0, time.process_time() - c0

import cube
from tasks.stages import templates
n = cube.open(store, "templates").sizes["model"]
plan = templates.plan(cfg, store)
start = (n // 2 // cfg.templates.chunk) * cfg.templates.chunk
stop = min(start + cfg.templates.chunk, n)
c0 = time.process_time()
templates.compute(start, stop, plan.payload)
chunk = time.process_time() - c0
print(json.dumps({"models": n, "wall": wall, "cpu": cpu, "chunk_models": stop - start, "chunk_cpu": chunk}))
"""


def _subset(full: list, k: int) -> list:
    idx = np.unique(np.round(np.linspace(0, len(full) - 1, k)).astype(int))
    return [full[i] for i in idx]


def _same_cube(a: Path, b: Path) -> bool:
    import xarray as xr

    da, db = (xr.open_zarr(s, group="templates", consolidated=False) for s in (a, b))
    if set(da.variables) != set(db.variables):
        return False
    for k in da.variables:
        x, y = da[k].values, db[k].values
        eq = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y)
        if x.shape != y.shape or not eq:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", action="append", required=True, help="checkout to time (repeat; first = baseline)")
    ap.add_argument("--masses", type=int, default=12)
    ap.add_argument("--metallicities", type=int, default=3)
    ap.add_argument("--keep", help="folder for the stores (default: a temporary one, deleted)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from tasks.config import load_preset

    t = load_preset("paper").templates
    masses = sorted(set(_subset(list(t.masses), args.masses)) | {1.0})
    over = {"masses": masses, "metallicities": _subset(list(t.metallicities), args.metallicities)}
    with tempfile.TemporaryDirectory(dir=args.keep) as tmp:
        results, stores = [], []
        for i, code in enumerate(args.code):
            store = Path(tmp) / f"code{i}.zarr"
            env = dict(os.environ, PYTHONPATH=str(Path(code).resolve()))
            out = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(over), str(store)], env=env, cwd=code,
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            results.append(r)
            stores.append(store)
            print(f"{code}: {r['models']} models, stage {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU "
                  f"-> {r['models'] / r['cpu']:.0f} models/s/core; one chunk of {r['chunk_models']}: "
                  f"{r['chunk_cpu']:.2f} s CPU ({r['chunk_models'] / r['chunk_cpu']:.0f} models/s)", flush=True)
        for code, r, s in zip(args.code[1:], results[1:], stores[1:]):
            print(f"{args.code[0]} / {code}: stage CPU x{results[0]['cpu'] / r['cpu']:.2f}, "
                  f"chunk CPU x{results[0]['chunk_cpu'] / r['chunk_cpu']:.2f}; "
                  f"templates cube bitwise identical: {_same_cube(stores[0], s)}")


if __name__ == "__main__":
    main()
