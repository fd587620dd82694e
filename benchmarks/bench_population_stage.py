"""CPU time of the ``population`` stage's chunks at paper scale, computed in this process.

Builds the stage's payload from a template library (the paper store's templates cube, read
only, or a library file ``STORE/_cache/library/*.npz``), then for each chosen chunk times
:func:`tasks.stages.population.compute` (sampling, both estimators) and the write of its rows
to a scratch Zarr store, in CPU seconds of this process (``time.process_time``), which the
other load of a shared machine moves less than wall time.  ``--save`` keeps every chunk's
arrays in an .npz, so that two checkouts can be compared bit for bit:

    PYTHONPATH=CHECKOUT python benchmarks/bench_population_stage.py --library LIB.npz \
        --chunks 0 1 2 3 40 80 120 123 --save /tmp/rows.npz

(the script imports only ``tasks`` and ``cube``: run it from one checkout with PYTHONPATH set
to another to time that one).  Goal (issue #17): the paper preset's 124 population chunks in
well under a minute of the fresh build's 6 on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", help="store with the templates cube (read only)")
    ap.add_argument("--library", help="a cached template library (.npz) instead of the store's templates cube")
    ap.add_argument("--preset", default="paper", choices=["paper", "quick"])
    ap.add_argument("--chunks", type=int, nargs="+", default=[0, 1, 2, 3, 40, 80, 120, 123])
    ap.add_argument("--save", help="write every chunk's arrays to this .npz")
    args = ap.parse_args()
    if (args.store is None) == (args.library is None):
        ap.error("give --store or --library")

    import numpy as np

    from benchmarks.bench_population import library_arguments
    from cube.fingerprint import digest
    from tasks.config import load_preset
    from tasks.stages import population as P

    config = load_preset(args.preset)
    g = config.galaxy
    library = library_arguments(args.store, args.library)
    comps, offsets = P.populations(g)
    payload = P.PopulationPayload(
        library=library, library_key=digest({"library": library}), galaxy=g, component=comps,
        feh_offset=offsets, seed=config.run.seed, t_max=float(config.templates.max_age),
    )
    t0 = time.process_time()
    P.compute(0, 1, P.PopulationPayload(**{**payload.__dict__, "galaxy": g.model_copy(
        update={"stars_per_population": 1600, "batches": g.batches})}))  # library, kernels, grid, first compile
    print(f"{len(comps)} populations x {g.stars_per_population:.3g} stars in {g.batches} batches; "
          f"library and kernels ready in {time.process_time() - t0:.2f} CPU s")
    rows: dict[str, np.ndarray] = {}
    scratch = Path(tempfile.mkdtemp(prefix="bench_population_stage_"))
    total_c = total_w = 0.0
    wall = time.perf_counter()
    try:
        for c in args.chunks:
            t0 = time.process_time()
            ds = P.compute(c, c + 1, payload)
            t1 = time.process_time()
            ds.to_zarr(scratch / f"{c}.zarr", mode="w", consolidated=False)
            t2 = time.process_time()
            total_c += t1 - t0
            total_w += t2 - t1
            print(f"  chunk {c:>3} ({comps[c]:<11}): compute {t1 - t0:5.2f} CPU s, write {t2 - t1:4.2f} CPU s")
            rows.update({f"{c}/{k}": v.values for k, v in ds.data_vars.items()})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    n = len(args.chunks)
    print(f"{n} chunks: compute {total_c:.2f} CPU s, write {total_w:.2f} CPU s ({(total_c + total_w) / n:.2f} per chunk), "
          f"wall {time.perf_counter() - wall:.1f} s; all {len(comps)} chunks at this rate: "
          f"{(total_c + total_w) / n * len(comps):.0f} CPU s")
    if args.save:
        np.savez(args.save, **rows)


if __name__ == "__main__":
    main()
