"""Population Monte Carlo throughput and the Monte Carlo error it leaves on the Galactic plane.

Prints, measured in this one run:

1. stars per second on one core of the kernel (sampling, lifetime test, template weights
   and their accumulation) for each estimator (eep, knn) and component, on the template
   library of ``--store`` (or of ``--library``, the library file the templates stage caches
   in ``STORE/_cache/library/*.npz`` before its profiles exist); rates are per CPU second
   of this process, which the other load of a shared machine moves less than wall time;
2. with ``--profile``, where the eep kernel's time goes (cProfile on CPU time, the thin disk);
3. with ``--compare-numpy``, the compiled eep weights and their accumulation against the
   numpy implementation they replaced (tests/tasks/kernels/population_numpy_oracle.py) on
   the same living stars: the speed ratio, and whether the sums are bitwise equal; with
   ``--compare-tree``, the knn grid search against the k-d tree query it replaced (same
   oracle), on each component's living stars: speeds, tied stars, bitwise equality;
4. the whole ``population`` and ``emissivity`` stages on a ``--workers`` LocalCluster:
   wall time, stars sampled, stars per second per core;
5. the relative standard error of L_bar and q in the Galactic plane (z = 0) at 1 and
   100 TeV for both scenarios.

Goal (issue "population synthesis"; #17 "turnaround" for eep and knn): >= 1e6 stars/s/core, so that
the paper preset's Monte Carlo (1.24e8 stars) takes about 1 min on 2 cores.  The stages need a
store whose xsec, templates and yields are built for the preset (for example by
``bench_planning.py``):

    python benchmarks/bench_population.py --store /tmp/paper.zarr --preset paper
    python benchmarks/bench_population.py --library /tmp/paper.zarr/_cache/library/KEY.npz \
        --preset paper --kernel-only --profile --compare-numpy --compare-tree
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def library_arguments(store: str | None, library: str | None) -> dict:
    """:class:`TemplateLibrary` arguments from a templates cube or a cached library file (.npz)."""
    import numpy as np

    if library is not None:
        with np.load(library, allow_pickle=False) as d:
            data = {k: d[k] for k in ("mass_init", "metallicity", "age", "duration", "stage", "valid")}
    else:
        import cube

        t = cube.open(store, "templates")
        data = {k: t[k].values for k in ("mass_init", "metallicity", "age", "duration", "stage", "valid")}
    out = {k: data[k].astype(float) for k in ("mass_init", "metallicity", "age", "duration")}
    out["stage"] = data["stage"].astype(str)
    out["valid"] = data["valid"].astype(bool)
    return out


def _run(lib, config, comp: str, n: int, est: str) -> None:
    from tasks.kernels.population import population_weights

    population_weights(
        lib, comp, [0.0], config.galaxy, seed=1, n_batches=4, stars_per_batch=n // 4,
        t_max=config.templates.max_age, estimators=(est,),
    )


def kernel_throughput(lib, config, n: int) -> dict[str, dict[str, float]]:
    """Stars per CPU second of this process for each estimator and component (one population each)."""
    from tasks.kernels.population import ESTIMATORS

    out: dict[str, dict[str, float]] = {}
    for est in ESTIMATORS:
        _run(lib, config, "thin", 4000, est)  # compiles or loads the kernels, builds the track grid
        out[est] = {}
        for comp in ("thin", "thick", "bulge", "bulge_young"):
            t0 = time.process_time()
            _run(lib, config, comp, n, est)
            out[est][comp] = n / (time.process_time() - t0)
    return out


def profile_eep(lib, config, n: int, top: int = 8) -> None:
    """Print the functions that take the eep kernel's CPU time (thin disk, ``n`` stars)."""
    import cProfile
    import pstats

    prof = cProfile.Profile(time.process_time)
    prof.enable()
    _run(lib, config, "thin", n, "eep")
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())
    rows = sorted(((v[2], f"{Path(k[0]).name}:{k[2]}") for k, v in stats.items()), reverse=True)[:top]
    print(f"eep, thin disk, {n:,} stars: {total:.2f} CPU s; own time per function:")
    for t, name in rows:
        print(f"  {name:<40} {t / n * 1e9:7.1f} ns/star {t / total:6.1%}")


def compare_numpy(lib, n: int) -> None:
    """The compiled eep weights and accumulation against the numpy code they replaced, same stars."""
    import numpy as np

    from tests.tasks.kernels import population_numpy_oracle as oracle

    rng = np.random.default_rng(0)
    # IMF-like masses (most stars light) at random metallicities and ages below the lifetime
    M = np.maximum(0.08 * (1 - rng.random(n)) ** (-1 / 1.3), lib.mass_range[0]).clip(None, lib.mass_range[1])
    Z = np.clip(10 ** rng.uniform(-3.5, -1.5, n), *lib.z_range)
    age = rng.random(n) * lib.lifetime(M, Z)
    weight = rng.random(n)
    lm, logz, alive = np.log10(M), np.log10(Z), np.ones(n, bool)
    out = np.zeros(lib.size)
    lib.add_phase_weights(lm[:100], logz[:100], age[:100], weight[:100], alive[:100], out)
    out[:] = 0.0
    t0 = time.process_time()
    lib.add_phase_weights(lm, logz, age, weight, alive, out)
    t_new = time.process_time() - t0
    t0 = time.process_time()
    idx, w = oracle.phase_weights(lib._phases, lm, Z, age)
    ref = np.bincount(idx.ravel(), weights=(w * weight[:, None]).ravel(), minlength=lib.size)
    t_old = time.process_time() - t0
    print(f"eep weights + accumulation, {n:,} living stars: numpy {n / t_old:,.0f} stars/s, compiled "
          f"{n / t_new:,.0f} stars/s, ratio {t_old / t_new:.2f}; sums bitwise equal: {np.array_equal(out, ref)}")


def living_stars(lib, config, comp: str, n: int):
    """Mass [Msun], Z and age [yr] of the living stars among ``n`` drawn as ``population_weights`` draws them."""
    import numpy as np

    from tasks.kernels import population as P

    g, t_max = config.galaxy, config.templates.max_age
    imf = P.IMF(tuple(g.imf.breaks), tuple(g.imf.slopes))
    lo, hi, _, count = P.strata_allocation(imf, g.imf.strata, g.imf.max_template_mass, n, g.imf.strata_share)
    rng = P.batch_rng(1, comp, 0)
    u_m, u_a, u_f = rng.random(n), rng.random(n), rng.random(n)
    c_lo, c_hi = imf.cdf(np.repeat(lo, count)), imf.cdf(np.repeat(hi, count))
    M = np.maximum(imf.ppf(c_lo + u_m * (c_hi - c_lo)), lib.mass_range[0])
    p_young = P.age_cdf(comp, g, lib.lifetime_bound(M), t_max)
    age = P.sample_ages(comp, g, u_a * p_young, t_max)
    Z = np.clip(g.z_sun * 10.0 ** P.sample_feh(comp, g, u_f, age, 0.0), *lib.z_range)
    alive = lib.alive(np.log10(M), np.log10(Z), age, p_young)
    return M[alive], Z[alive], age[alive]


def compare_tree(lib, config, n: int) -> None:
    """The knn grid search against the k-d tree query it replaced, on each component's living stars."""
    import numpy as np

    from tasks.kernels.knn import nearest
    from tests.tasks.kernels import population_numpy_oracle as oracle

    k = config.galaxy.neighbours
    for comp in ("thin", "thick", "bulge", "bulge_young"):
        M, Z, age = living_stars(lib, config, comp, n)
        oracle.neighbours(lib, M[:100], Z[:100], age[:100], k)
        t0 = time.process_time()
        idx0, w0 = oracle.neighbours(lib, M, Z, age, k)
        t_tree = time.process_time() - t0
        t0 = time.process_time()
        idx, w = lib.neighbours(M, Z, age, k)
        t_grid = time.process_time() - t0
        pts = (np.log10(M), np.log10(Z), np.log10(np.maximum(age, lib.age_min)))
        tied = np.empty(M.size, bool)
        nearest(*pts, *lib.neighbour_grid, np.empty((M.size, k), np.int64), np.empty((M.size, k)), tied)
        same = np.array_equal(idx, idx0) and np.array_equal(w, w0)
        print(f"knn {comp:<12} {M.size:>9,} living stars: k-d tree {M.size / t_tree:>10,.0f} stars/s, grid search "
              f"{M.size / t_grid:>10,.0f} stars/s (x{t_tree / t_grid:.2f}); tied (asked of the tree) {int(tied.sum())}; "
              f"neighbours and weights bitwise equal: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", help="store with the templates cube (and xsec, yields for the stages)")
    ap.add_argument("--library", help="a cached template library (.npz) instead of the store's templates cube")
    ap.add_argument("--preset", default="paper", choices=["paper", "quick"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kernel-stars", type=int, default=1_000_000)
    ap.add_argument("--kernel-only", action="store_true", help="time the kernel only, not the stages")
    ap.add_argument("--profile", action="store_true", help="where the eep kernel's time goes")
    ap.add_argument("--compare-numpy", action="store_true", help="compiled eep against the numpy code it replaced")
    ap.add_argument("--compare-tree", action="store_true", help="knn grid search against the k-d tree it replaced")
    args = ap.parse_args()
    if args.store is None and (args.library is None or not args.kernel_only):
        ap.error("give --store (or --library with --kernel-only)")

    from tasks.config import load_preset
    from tasks.kernels.population import TemplateLibrary

    config = load_preset(args.preset)
    lib = TemplateLibrary(**library_arguments(args.store, args.library))
    rates = kernel_throughput(lib, config, args.kernel_stars)
    print(f"kernel, one core, library of {lib.size} templates (knn: K = {config.galaxy.neighbours}), stars per CPU second:")
    for comp in rates["eep"]:
        eep, knn = rates["eep"][comp], rates["knn"][comp]
        print(f"  {comp:<12} eep {eep:>12,.0f} stars/s   knn {knn:>12,.0f} stars/s   eep/knn speed {eep / knn:.2f}")
    if args.profile:
        profile_eep(lib, config, args.kernel_stars)
    if args.compare_numpy:
        compare_numpy(lib, args.kernel_stars // 2)
    if args.compare_tree:
        compare_tree(lib, config, args.kernel_stars)
    if args.kernel_only:
        return

    import cube
    from tasks.cluster import make_client
    from tasks.runner import run

    with make_client("local", args.workers) as client:
        t0 = time.perf_counter()
        res = run(config, args.store, client=client, stages=["population", "emissivity"]).stages
        wall = time.perf_counter() - t0
    pop, em = res["population"], res["emissivity"]
    stars = pop.work.get("stars_sampled", 0)
    print(f"population stage: {pop.chunks_computed}/{pop.chunks_total} chunks, {stars:.3g} stars in {pop.seconds:.1f} s "
          f"({stars / max(pop.seconds, 1e-9) / args.workers:,.0f} stars/s/core on {args.workers} workers)")
    print(f"emissivity stage: {em.chunks_computed}/{em.chunks_total} chunks in {em.seconds:.1f} s; both stages {wall:.1f} s wall")

    e = cube.open(args.store, "emissivity")
    plane = e.sel(z=0.0).sel(messenger="gamma").sel(energy=[1.0, 100.0], method="nearest").load()
    rel_q = plane.emissivity_stderr / plane.emissivity
    rel_L = plane.luminosity_mean_stderr / plane.luminosity_mean
    R_sun = config.galaxy.R_sun
    print("relative Monte Carlo error in the Galactic plane (z = 0), gamma rays:")
    for scen in ("ballistic", "mirroring"):
        for E in plane.energy.values:
            q = rel_q.sel(scenario=scen, energy=E)
            Lt = rel_L.sel(scenario=scen, energy=E, component="thin").sel(R=R_sun, method="nearest")
            Lb = rel_L.sel(scenario=scen, energy=E, component="bulge").isel(R=0)
            w = (plane.n_stars * plane.R).values  # stars per unit R in the plane
            mean_q = float((q * w).sum() / w.sum())
            print(f"  {scen:<9} {E:>6.3g} TeV: q  at R_sun {float(q.sel(R=R_sun, method='nearest')):.2e}, "
                  f"plane max {float(q.max()):.2e}, star-weighted mean {mean_q:.2e}; "
                  f"L_bar thin at R_sun {float(Lt):.2e}, bulge {float(Lb):.2e}")


if __name__ == "__main__":
    main()
