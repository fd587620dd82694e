"""Mean luminosity per star of two stores' populations, side by side (for example quick against paper).

For the bulge, the thick disk and the thin disk at R_sun, each estimator, both scenarios and
both messengers at 1 TeV: L_bar = weight @ L(model) of the first store over the second's.

    python benchmarks/compare_lbar.py QUICK.zarr PAPER.zarr
"""

from __future__ import annotations

import sys

import numpy as np


def lbar(store: str) -> dict[tuple[str, str, str, str], float]:
    import cube
    from tasks.report import _thin_at_sun

    pop = cube.open(store, "population").load()
    y = cube.open(store, "yields").luminosity.sel(energy=1.0, method="nearest").load().fillna(0.0)
    comp = pop.component.values.astype(str)
    rows = {"bulge": int(np.flatnonzero(comp == "bulge")[0]), "thick": int(np.flatnonzero(comp == "thick")[0]),
            "thin at R_sun": _thin_at_sun(pop)}
    out = {}
    for c, i in rows.items():
        for est in pop.estimator.values.astype(str):
            w = pop.weight.sel(estimator=est).isel(population=i).values
            for scen in ("ballistic", "mirroring"):
                for msg in ("nu", "gamma"):
                    out[(c, est, scen, msg)] = float(w @ y.sel(scenario=scen, messenger=msg).values)
    return out


def main() -> None:
    a, b = lbar(sys.argv[1]), lbar(sys.argv[2])
    print(f"{'component':<14} {'estimator':<9} {'scenario':<9} {'messenger':<9} first / second")
    for k in a:
        print(f"{k[0]:<14} {k[1]:<9} {k[2]:<9} {k[3]:<9} {a[k] / b[k]:.3f}")


if __name__ == "__main__":
    main()
