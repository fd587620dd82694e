"""The floor of a yields-only change (issue #17, ``mirroring.f_B_high``) at paper scale, as a user sees it.

Two measurements on an existing paper-preset store (build one with ``stardiffuse run --preset
paper``; the script writes into it, so give it a copy):

``cli``
    For each ``--code`` checkout in turn, a YAML ``{preset: paper, mirroring: {f_B_high: V}}``
    with the next of ``--values`` (each value must be new to the store, or the yields cache
    serves it and the kernel does not run) and ``python -m tasks.cli run --config YAML --store
    S --workers 2 --json`` from the shell; prints the wall seconds, the CPU seconds of the run and
    its worker processes (``getrusage`` of the children) and the seconds of every stage.

(``--preset quick`` for a quick-preset store.)

``stages``
    For each checkout, in a fresh process, one core, the CPU seconds (``time.process_time``) of
    what a yields change reruns downstream of the yields: ``emissivity.compute`` of
    ``--emissivity-chunks`` R chunks and ``sky.compute`` of ``--sky-chunks`` pixel chunks (their
    operators cached), nothing written; and whether the checkouts' arrays are bitwise equal.

    python benchmarks/bench_turnaround_floor.py cli --store /tmp/t/paper.zarr \\
        --code /work/main --code . --values 0.4 0.35
    python benchmarks/bench_turnaround_floor.py stages --store /tmp/t/paper.zarr --code /work/main --code .
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STAGES = r"""
import json, sys, time
import numpy as np
from tasks.config import load_config
from tasks.stages import emissivity as E, sky as K

cfg = load_config(sys.argv[1])
store, n_e, n_s, out = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
arrays = {}
ep = E.plan(cfg, store).payload
c = time.process_time()
for s0 in range(0, min(n_e * cfg.galaxy.chunk, ep.R.size), cfg.galaxy.chunk):
    ds = E.compute(s0, min(s0 + cfg.galaxy.chunk, ep.R.size), ep)
    arrays.update({f"emissivity/{s0}/{v}": ds[v].values for v in ds.data_vars})
t_e = time.process_time() - c
sp = K.plan(cfg, store)
chunk, n_pix, los = sp.chunk, sp.template.sizes["pixel"], sp.payload.los
K.emissivity_inputs(los["store"], los["emissivity_key"], los["modes"])  # once per process, as on a worker
starts = list(range(0, n_pix, chunk))[:n_s]
c = time.process_time()
for s0 in starts:
    ds = K.compute(s0, min(s0 + chunk, n_pix), sp.payload)
    arrays.update({f"sky/{s0}/{v}": ds[v].values for v in ds.data_vars})
t_s = time.process_time() - c
n_s = len(starts)
np.savez(out, **arrays)
print(json.dumps({"emissivity_cpu": t_e, "sky_cpu_per_chunk": t_s / n_s}))
"""


def _yaml(tmp: Path, value: float, preset: str) -> Path:
    path = tmp / f"fb{value}.yaml"
    path.write_text(f"preset: {preset}\nmirroring:\n  f_B_high: {value}\n")
    return path


def _env(code: Path) -> dict:
    return dict(os.environ, PYTHONPATH=str(code))


def cli(args, codes: list[Path]) -> None:
    if len(args.values) < len(codes):
        sys.exit("give one new f_B_high value per checkout (--values)")
    with tempfile.TemporaryDirectory() as tmp:
        for code, value in zip(codes, args.values):
            cfg = _yaml(Path(tmp), value, args.preset)
            cmd = [sys.executable, "-m", "tasks.cli", "run", "--config", str(cfg), "--store", args.store,
                   "--workers", str(args.workers), "--json"]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            r = subprocess.run(cmd, cwd=code, env=_env(code), capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            stages = json.loads(r.stdout.strip().splitlines()[-1])["stages"]
            per = ", ".join(f"{k} {v['seconds']:.1f}" for k, v in stages.items())
            print(f"{code} f_B_high {value}: wall {wall:.1f} s, CPU {cpu:.1f} s, load {os.getloadavg()[0]:.1f}; {per}")


def stages(args, codes: list[Path]) -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _yaml(Path(tmp), args.value, args.preset)
        for i, code in enumerate(codes):
            out = Path(tmp) / f"{i}.npz"
            r = subprocess.run(
                [sys.executable, "-c", STAGES, str(cfg), args.store, str(args.emissivity_chunks), str(args.sky_chunks), str(out)],
                cwd=code, env=dict(_env(code), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"),
                capture_output=True, text=True, check=True,
            )
            res = json.loads(r.stdout.strip().splitlines()[-1])
            results.append(res)
            print(f"{code}: emissivity {args.emissivity_chunks} chunks {res['emissivity_cpu']:.2f} CPU s, "
                  f"sky {res['sky_cpu_per_chunk']:.3f} CPU s per chunk")
            if i:
                with np.load(Path(tmp) / "0.npz") as a, np.load(out) as b:
                    same = a.files == b.files and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a.files)
                print(f"  arrays bitwise equal to {codes[0]}'s: {same}")
    for code, res in zip(codes[1:], results[1:]):
        print(f"{code} vs {codes[0]}: emissivity x{results[0]['emissivity_cpu'] / res['emissivity_cpu']:.2f}, "
              f"sky x{results[0]['sky_cpu_per_chunk'] / res['sky_cpu_per_chunk']:.2f} (CPU)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["cli", "stages"])
    ap.add_argument("--store", required=True, help="a paper-preset store (written into: use a copy)")
    ap.add_argument("--code", action="append", help="checkout to time (repeat; default this one)")
    ap.add_argument("--values", type=float, nargs="+", default=[], help="cli: one new f_B_high per checkout")
    ap.add_argument("--preset", default="paper", choices=["quick", "paper"], help="the store's preset")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--value", type=float, default=0.7, help="stages: the store's current f_B_high")
    ap.add_argument("--emissivity-chunks", type=int, default=5)
    ap.add_argument("--sky-chunks", type=int, default=4)
    args = ap.parse_args()
    codes = [Path(c).resolve() for c in (args.code or [Path(__file__).resolve().parents[1]])]
    (cli if args.what == "cli" else stages)(args, codes)


if __name__ == "__main__":
    main()
