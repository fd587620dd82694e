"""Every cube of two stores, variable by variable: how many values are not bitwise equal, and the
largest relative difference (issue #17: "every cube unchanged for unchanged inputs", 1e-12).

Blockwise along each variable's first dim, so a paper sky (635 M values) fits in memory.
Coordinates must be identical.

    python benchmarks/compare_stores.py NEW.zarr OLD.zarr
"""

from __future__ import annotations

import sys

import numpy as np
import xarray as xr

GROUPS = ("xsec", "templates", "yields", "population", "emissivity", "sky", "sed")


def compare(a: str, b: str, group: str, block: float = 2e7) -> tuple[int, int, float]:
    """(values, values not bitwise equal, largest |a - b| / |b|) of one group of two stores."""
    x = xr.open_zarr(a, group=group, consolidated=False)
    y = xr.open_zarr(b, group=group, consolidated=False)
    xr.testing.assert_identical(x.coords.to_dataset().drop_attrs(), y.coords.to_dataset().drop_attrs())
    worst, nbad, ntot = 0.0, 0, 0
    for v in x.data_vars:
        d0 = x[v].dims[0]
        n = x.sizes[d0]
        step = max(1, int(block // max(1, x[v].size // n)))
        for s in range(0, n, step):
            xa = x[v].isel({d0: slice(s, s + step)}).values
            ya = y[v].isel({d0: slice(s, s + step)}).values
            ntot += xa.size
            ne = xa != ya
            if xa.dtype.kind in "fc":
                ne &= ~(np.isnan(xa) & np.isnan(ya))
                if ne.any():
                    d = np.abs(xa[ne] - ya[ne]) / np.maximum(np.abs(ya[ne]), 1e-300)
                    worst = max(worst, float(d.max()))
            elif ne.any():
                worst = np.inf
            nbad += int(ne.sum())
    return ntot, nbad, worst


def main() -> None:
    a, b = sys.argv[1], sys.argv[2]
    bad = False
    for g in GROUPS:
        ntot, nbad, worst = compare(a, b, g)
        bad |= worst > 1e-12
        ok = "ok" if worst <= 1e-12 else "EXCEEDS 1e-12"
        print(f"{g:11s} {ntot:>13,d} values, {nbad:>10,d} not bitwise equal, max rel diff {worst:.2e}: {ok}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
