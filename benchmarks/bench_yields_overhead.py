"""What a yields chunk costs besides its kernels (issue #17, turnaround): CPU seconds per chunk.

For each ``--code`` checkout, in a fresh process on one core: plan the yields stage at the
store's current ``mirroring.f_B_high`` (``--value``; every part of every chunk is then in the
store's cache, so no kernel runs), then ``yields.compute`` and ``cube.store.validate_chunk``
of every ``--every``-th chunk, timed with ``time.process_time`` (reading the templates and the
cached parts, combining the scenarios, checking the chunk against the stored group; writing
is not timed and nothing is written).  Prints the CPU seconds per chunk of each checkout and
whether their chunks (data and coordinates, dtypes included) are bitwise equal.

    python benchmarks/bench_yields_overhead.py --store /tmp/t/paper.zarr --value 0.45 --code /work/main --code .
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

CHUNKS = r"""
import json, sys, time
import numpy as np
from cube import store as cstore
from cube.fingerprint import chunk_keys
from tasks.config import load_config
from tasks.stages import yields as Y

cfg = load_config(sys.argv[1])
store, every, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
plan = Y.plan(cfg, store)  # the Sun's calibration is cached: the store ran yields at this value
keys = chunk_keys("yields", "model", plan.template.sizes["model"], plan.chunk)[::every]
Y.compute(keys[0].start, keys[0].stop, plan.payload)  # imports, outside the timing
arrays = {}
c = time.process_time()
for k in keys:
    ds = Y.compute(k.start, k.stop, plan.payload)
    cstore.validate_chunk(store, "yields", k, ds)
    arrays.update({f"{k.start}/{v}": ds[v].values for v in ds.variables if ds[v].dtype.kind != "O"})
cpu = time.process_time() - c
np.savez(out, **arrays)
print(json.dumps({"chunks": len(keys), "cpu_per_chunk": cpu / len(keys)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a paper-preset store that has run yields at --value (read only)")
    ap.add_argument("--code", action="append", help="checkout to time (repeat; default this one)")
    ap.add_argument("--value", type=float, required=True, help="the store's current mirroring.f_B_high")
    ap.add_argument("--preset", default="paper", choices=["quick", "paper"])
    ap.add_argument("--every", type=int, default=3, help="time every n-th chunk")
    args = ap.parse_args()
    codes = [Path(c).resolve() for c in (args.code or ["."])]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "fb.yaml"
        cfg.write_text(f"preset: {args.preset}\nmirroring:\n  f_B_high: {args.value}\n")
        outs = []
        for i, code in enumerate(codes):
            out = Path(tmp) / f"{i}.npz"
            r = subprocess.run(
                [sys.executable, "-c", CHUNKS, str(cfg), str(args.store), str(args.every), str(out)],
                cwd=code, env=dict(os.environ, PYTHONPATH=str(code)), capture_output=True, text=True, check=True,
            )
            print(code, r.stdout.strip().splitlines()[-1])
            outs.append(np.load(out))
        for code, o in zip(codes[1:], outs[1:]):
            a = outs[0]
            same = sorted(a.files) == sorted(o.files) and all(
                a[k].dtype == o[k].dtype and a[k].tobytes() == o[k].tobytes() for k in a.files
            )
            print(json.dumps({"code": str(code), "bitwise_equal_to_first": same, "arrays": len(a.files)}))


if __name__ == "__main__":
    main()
