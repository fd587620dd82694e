"""Codecs for the sky maps on real chunk data (issue #17): size, write and read seconds, losslessness.

Reads pixel chunk ``--chunk`` of ``intensity`` and ``intensity_stderr`` from a store's sky group
(read only) and writes both, one zarr chunk each, into a scratch group under ``--scratch`` with
every candidate codec: compression ratio (raw bytes / stored bytes), CPU (``time.process_time``,
zarr's threads included) and wall seconds to write and to read back, best of ``--repeat``; and
checks every value comes back bit for bit.  With ``--thread`` it runs in a thread other than the
main one, as a dask worker's task does (blosc then compresses on one thread).

    python benchmarks/bench_sky_codec.py --store /tmp/t/paper.zarr --chunk 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, ZstdCodec


def candidates() -> dict[str, list]:
    blosc = lambda cname, level, shuffle: [BloscCodec(cname=cname, clevel=level, shuffle=shuffle, typesize=8)]  # noqa: E731
    return {
        "zstd level 0 (zarr's default, = 3)": [ZstdCodec(level=0)],
        "zstd level 1": [ZstdCodec(level=1)],
        "blosc lz4 5 shuffle": blosc("lz4", 5, "shuffle"),
        "blosc lz4 9 shuffle": blosc("lz4", 9, "shuffle"),
        "blosc lz4 5 bitshuffle": blosc("lz4", 5, "bitshuffle"),
        "blosc zstd 1 shuffle": blosc("zstd", 1, "shuffle"),
        "blosc zstd 3 shuffle": blosc("zstd", 3, "shuffle"),
        "blosc zstd 1 bitshuffle": blosc("zstd", 1, "bitshuffle"),
        "none": [],
    }


def measure(arrays: dict[str, np.ndarray], root: str, repeat: int) -> None:
    raw = sum(a.nbytes for a in arrays.values())
    for name, codecs in candidates().items():
        best = None
        for _ in range(repeat):
            shutil.rmtree(root, ignore_errors=True)
            g = zarr.open_group(root, mode="w", zarr_format=3)
            out = {v: g.create_array(v, shape=a.shape, chunks=a.shape, dtype="f8", compressors=codecs, fill_value=np.nan)
                   for v, a in arrays.items()}
            c, w = time.process_time(), time.perf_counter()
            for v, a in arrays.items():
                out[v][...] = a
            write = (time.process_time() - c, time.perf_counter() - w)
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs if f != "zarr.json")
            g = zarr.open_group(root, mode="r")
            c, w = time.process_time(), time.perf_counter()
            back = {v: g[v][...] for v in arrays}
            read = (time.process_time() - c, time.perf_counter() - w)
            if not all(np.array_equal(back[v].view(np.uint64), a.view(np.uint64)) for v, a in arrays.items()):
                raise AssertionError(f"{name}: values not bitwise equal after a round trip")
            if best is None or write[0] + read[0] < best[1][0] + best[2][0]:
                best = (raw / size, write, read)
        ratio, write, read = best
        print(f"{name:36s} ratio {ratio:5.3f}  write {write[0]:.3f} CPU s {write[1]:.3f} wall  "
              f"read {read[0]:.3f} CPU s {read[1]:.3f} wall")
    shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a store with a sky group (only read)")
    ap.add_argument("--chunk", type=int, default=5, help="pixel chunk to read")
    ap.add_argument("--scratch", default="/tmp/bench_sky_codec.zarr")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--thread", action="store_true", help="run in a thread other than the main one")
    args = ap.parse_args()
    sky = xr.open_zarr(args.store, group="sky", consolidated=False, chunks=None)
    n = sky.intensity.encoding["chunks"][0]
    rows = slice(args.chunk * n, (args.chunk + 1) * n)
    arrays = {v: np.ascontiguousarray(sky[v].isel(pixel=rows).values) for v in ("intensity", "intensity_stderr")}
    print(f"pixel chunk {args.chunk}: {n} pixels, {sum(a.nbytes for a in arrays.values()) / 1e6:.1f} MB of float64")
    if args.thread:
        t = threading.Thread(target=measure, args=(arrays, args.scratch, args.repeat))
        t.start()
        t.join()
    else:
        measure(arrays, args.scratch, args.repeat)


if __name__ == "__main__":
    main()
