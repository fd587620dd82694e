"""How the mean luminosity per star depends on the estimator and on the template library's resolution.

Takes a store whose templates and yields are built (the paper preset: 120 masses, 16 Z), draws
sub-libraries from it (every k-th mass, the quick preset's masses and metallicities, fewer
snapshots per stage), and for each one computes the thin disk's mean 1 TeV neutrino and gamma-ray
luminosity per star at R_sun (ballistic) with both estimators, on the same sampled stars, with the
yields of the store. Printed relative to the full library's ``eep`` value: a converged estimator
gives 1 on every library that resolves the tracks.

    python benchmarks/estimator_resolution.py --store /tmp/paper.zarr [--stars 400000]
"""

from __future__ import annotations

import argparse

import numpy as np

#: The quick preset's masses before issue #14: too few between 2 and 25 Msun for any estimator.
OLD_QUICK_MASSES = (0.1, 0.3, 0.5, 0.8, 1.0, 1.2, 1.41, 2.0, 5.0, 15.0, 25.0)

def _nearest(values: np.ndarray, wanted) -> np.ndarray:
    lv = np.log(values)
    return np.unique([values[np.argmin(np.abs(lv - np.log(w)))] for w in wanted])


def _every_nth_snapshot(meta, keep: np.ndarray, n: int) -> np.ndarray:
    """Keep every n-th snapshot of each (track, stage), re-spreading its time over the kept ones."""
    out = np.zeros_like(keep)
    key = np.char.add(np.char.add(meta["mass_init"].astype(str), meta["metallicity"].astype(str)), meta["stage"])
    for k in np.unique(key[keep]):
        idx = np.flatnonzero(keep & (key == k))
        idx = idx[np.argsort(meta["age"][idx])]
        out[idx[n // 2 :: n] if idx.size >= n else idx[idx.size // 2 :: idx.size]] = True
    return out


def libraries(meta, quick_masses, quick_z) -> dict[str, np.ndarray]:
    """Named subsets (boolean masks over the templates)."""
    m, z = meta["mass_init"], meta["metallicity"]
    masses, zs = np.unique(m), np.unique(z)
    ok = meta["valid"]
    out = {"full": ok.copy()}
    for k in (2, 4, 8):
        out[f"every {k}th mass"] = ok & np.isin(m, np.concatenate([masses[::k], masses[-1:]]))
    out["old quick masses"] = ok & np.isin(m, _nearest(masses, OLD_QUICK_MASSES))
    out["quick masses"] = ok & np.isin(m, _nearest(masses, quick_masses))
    out["quick Z"] = ok & np.isin(z, _nearest(zs, quick_z))
    out["quick masses and Z"] = out["quick masses"] & np.isin(z, _nearest(zs, quick_z))
    out["every 3rd snapshot"] = _every_nth_snapshot(meta, ok, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--stars", type=int, default=400_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--masses", type=float, nargs="+", help="masses [Msun] to try instead of the quick preset's")
    args = ap.parse_args()

    import cube
    from tasks.config import load_preset

    quick = load_preset("quick").templates
    quick_masses = args.masses or quick.masses
    from tasks.kernels.population import TemplateLibrary, population_weights
    from tasks.stages.emissivity import batch_means

    galaxy = load_preset("paper").galaxy
    t = cube.open(args.store, "templates")
    meta = {k: t[k].values for k in ("mass_init", "metallicity", "age", "duration", "stage", "valid")}
    meta["stage"] = meta["stage"].astype(str)
    meta["valid"] = meta["valid"].astype(bool)
    y = cube.open(args.store, "yields").luminosity.sel(scenario="ballistic").sel(energy=1.0, method="nearest")
    L = np.nan_to_num(y.transpose("model", "messenger").values)  # (model, [gamma, nu])
    rows = []
    for name, keep in libraries(meta, quick_masses, quick.metallicities).items():
        idx = np.flatnonzero(keep)
        # a dropped snapshot's time goes to the kept ones of its stage: durations from the kept ages
        lib = TemplateLibrary(meta["mass_init"][idx], meta["metallicity"][idx], meta["age"][idx],
                              _durations(meta, idx), meta["stage"][idx])
        (res,) = population_weights(lib, "thin", [0.0], galaxy, seed=args.seed, n_batches=8,
                                    stars_per_batch=args.stars // 8, t_max=1.4e10, estimators=("eep", "knn"))
        for e, est in enumerate(("eep", "knn")):
            mean, err = batch_means(res.weight[e][None], res.weight_batch[e][None], L[idx])
            rows.append((name, idx.size, est, mean[0], err[0]))
    ref = next(r[3] for r in rows if r[0] == "full" and r[2] == "eep")
    print(f"thin disk at R_sun, ballistic, 1 TeV; {args.stars} stars; relative to the full library's eep")
    print(f"{'library':<22} {'templates':>9} {'estimator':>9} {'nu':>12} {'gamma':>12}")
    for name, n, est, mean, err in rows:
        print(f"{name:<22} {n:>9} {est:>9} {mean[1] / ref[1]:>7.3f}±{err[1] / ref[1]:.3f} {mean[0] / ref[0]:>7.3f}±{err[0] / ref[0]:.3f}")


def _durations(meta, idx: np.ndarray) -> np.ndarray:
    """Durations of the kept snapshots: each stage's span split at midpoints between kept ages."""
    d = np.empty(idx.size)
    key = np.char.add(np.char.add(meta["mass_init"][idx].astype(str), meta["metallicity"][idx].astype(str)), meta["stage"][idx])
    allkey = np.char.add(np.char.add(meta["mass_init"].astype(str), meta["metallicity"].astype(str)), meta["stage"])
    for k in np.unique(key):
        sel = np.flatnonzero(key == k)
        full = allkey == k
        t0 = (meta["age"][full] - 0.5 * meta["duration"][full]).min()
        t1 = (meta["age"][full] + 0.5 * meta["duration"][full]).max()
        order = sel[np.argsort(meta["age"][idx][sel])]
        a = meta["age"][idx][order]
        edges = np.concatenate([[t0], 0.5 * (a[1:] + a[:-1]), [t1]])
        d[order] = np.diff(edges)
    return d


if __name__ == "__main__":
    main()
