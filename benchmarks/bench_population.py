"""Population Monte Carlo throughput and the Monte Carlo error it leaves on the Galactic plane.

Prints, measured in this one run:

1. stars per second on one core of the kernel (sampling, lifetime test, template weights
   and their accumulation) for each estimator (eep, knn) and component, on the template
   library of ``--store``;
2. the whole ``population`` and ``emissivity`` stages on a ``--workers`` LocalCluster:
   wall time, stars sampled, stars per second per core;
3. the relative standard error of L_bar and q in the Galactic plane (z = 0) at 1 and
   100 TeV for both scenarios.

Goal (issue "population synthesis"): >= 1e6 stars/s/core, so that the paper preset's Monte
Carlo (1.24e8 stars) takes < 1 min on 2 cores.  Needs a store whose xsec, templates and
yields are built for the preset (for example by ``bench_planning.py``):

    python benchmarks/bench_population.py --store /tmp/paper.zarr --preset paper
"""

from __future__ import annotations

import argparse
import time



def kernel_throughput(store: str, config, n: int) -> dict[str, dict[str, float]]:
    """Stars per second on this core for each estimator and component (one population each)."""
    import cube
    from tasks.kernels.population import ESTIMATORS, TemplateLibrary, population_weights

    t = cube.open(store, "templates")
    lib = TemplateLibrary(
        **{k: t[k].values.astype(float) for k in ("mass_init", "metallicity", "age", "duration")},
        stage=t.stage.values.astype(str),
    )
    out: dict[str, dict[str, float]] = {}
    for est in ESTIMATORS:
        out[est] = {}
        for comp in ("thin", "thick", "bulge", "bulge_young"):
            t0 = time.perf_counter()
            population_weights(
                lib, comp, [0.0], config.galaxy, seed=1, n_batches=4, stars_per_batch=n // 4,
                t_max=config.templates.max_age, estimators=(est,),
            )
            out[est][comp] = n / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--preset", default="paper", choices=["paper", "quick"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kernel-stars", type=int, default=1_000_000)
    ap.add_argument("--kernel-only", action="store_true", help="time the kernel only, not the stages")
    args = ap.parse_args()

    import cube
    from tasks.cluster import make_client
    from tasks.config import load_preset
    from tasks.runner import run

    config = load_preset(args.preset)
    lib_size = cube.open(args.store, "templates").sizes["model"]
    rates = kernel_throughput(args.store, config, args.kernel_stars)
    print(f"kernel, one core, library of {lib_size} templates (knn: K = {config.galaxy.neighbours}):")
    for comp in rates["eep"]:
        eep, knn = rates["eep"][comp], rates["knn"][comp]
        print(f"  {comp:<12} eep {eep:>12,.0f} stars/s   knn {knn:>12,.0f} stars/s   eep/knn speed {eep / knn:.2f}")
    if args.kernel_only:
        return

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
