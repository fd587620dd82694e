"""CPU seconds of the sky and sed chunks on a yields-only change, checkouts back to back (issue #17).

For each ``--code`` checkout in turn, in a fresh process, one BLAS thread (as on a worker): the
emissivity read of a worker (``sky.emissivity_inputs``), ``sky.compute`` of four pixel chunks
(1, 5, 31, 63; their operators cached) and their validation and write into a scratch sky group
set up with that checkout's template (so its codec), and ``sed.compute`` of every region, one
region per call as the stage runs them; ``time.process_time`` (zarr's threads included).  Then
whether every array is bitwise equal between the runs.  Nothing is written into ``--store``.

    python benchmarks/bench_sky_sed_chunks.py --store /tmp/t/paper.zarr --config fb.yaml \\
        --code /work/main --code . --code . --code /work/main
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

CHILD = r"""
import json, sys, time, shutil
import numpy as np
from cube import store as cs
from cube.fingerprint import ChunkKey
from cube.schema import apply_metadata
from tasks.config import load_config
from tasks.stages import sed as D, sky as K

cfg = load_config(sys.argv[1])
store, out, scratch = sys.argv[2], sys.argv[3], sys.argv[4]
sp = K.plan(cfg, store)
chunk, los = sp.chunk, sp.payload.los
c = time.process_time()
K.emissivity_inputs(los["store"], los["emissivity_key"], los["modes"])
t_lbar = time.process_time() - c
cs.setup_group(scratch, "sky", apply_metadata(sp.template, K.SCHEMA), "pixel", chunk)
K.compute(0, chunk, sp.payload)  # imports and compiled-kernel loads: once per worker
arrays, t_compute, t_write = {}, 0.0, 0.0
starts = [i * chunk for i in (1, 5, 31, 63) if i * chunk < sp.template.sizes["pixel"]]
for s0 in starts:
    key = ChunkKey("sky", "pixel", s0, min(s0 + chunk, sp.template.sizes["pixel"]))
    c = time.process_time()
    ds = K.compute(key.start, key.stop, sp.payload)
    t_compute += time.process_time() - c
    c = time.process_time()
    cs.validate_chunk(scratch, "sky", key, ds)
    cs.write_chunk(scratch, "sky", key, ds)
    t_write += time.process_time() - c
    arrays.update({f"sky/{s0}/{v}": ds[v].values for v in ds.data_vars})
dp = D.plan(cfg, store).payload
per = {}
for i, name in enumerate(dp.names):
    c = time.process_time()
    ds = D.compute(i, i + 1, dp)
    per[str(name)] = time.process_time() - c
    arrays.update({f"sed/{name}/{v}": ds[v].values for v in ds.data_vars})
np.savez(out, **arrays)
print(json.dumps({"lbar": t_lbar, "sky_compute": t_compute / len(starts), "sky_write": t_write / len(starts),
                  "sed": sum(per.values()), "sed_regions": per}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a store built through sed with cached operators (only read)")
    ap.add_argument("--config", required=True, help="the store's configuration (YAML)")
    ap.add_argument("--code", action="append", help="checkout to time (repeat; default this one)")
    args = ap.parse_args()
    codes = [Path(c).resolve() for c in (args.code or [Path(__file__).resolve().parents[1]])]
    with tempfile.TemporaryDirectory() as tmp:
        outs = []
        for i, code in enumerate(codes):
            out = Path(tmp) / f"{i}.npz"
            env = dict(os.environ, PYTHONPATH=str(code), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
            r = subprocess.run([sys.executable, "-c", CHILD, args.config, args.store, str(out), str(Path(tmp) / f"{i}.zarr")],
                               cwd=code, env=env, capture_output=True, text=True, check=True)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            outs.append(out)
            print(f"{code} (load {os.getloadavg()[0]:.1f}): emissivity read {res['lbar']:.3f}, sky per chunk compute "
                  f"{res['sky_compute']:.3f} + write {res['sky_write']:.3f}, sed {res['sed']:.2f} "
                  f"(all_sky {res['sed_regions'].get('all_sky', float('nan')):.2f}) CPU s")
        with np.load(outs[0]) as a:
            for out, code in zip(outs[1:], codes[1:]):
                with np.load(out) as b:
                    same = a.files == b.files and all(np.array_equal(a[k].view(np.uint8), b[k].view(np.uint8)) for k in a.files)
                print(f"  {code}: every array bitwise equal to {codes[0]}'s: {same}")


if __name__ == "__main__":
    main()
