"""All-sky maps and region spectra at paper scale: time, memory, a quad reference and convergence.

Prints, measured in this one run, on a store whose emissivity is built for ``--preset``:

1. the ``sky`` (nside of the preset, every energy, both scenarios and messengers) and ``sed``
   stages on a ``--workers`` LocalCluster: wall time and the peak RSS of the workers and the
   client;
2. a straightforward reference on ``--n-ref`` random pixels: scipy ``quad`` along each ray of
   q(s) = sum_c n_c(R, z) L_bar_c(R, E) for every energy; the largest relative difference to
   the map and the ratio of speeds per pixel;
3. convergence of the Galactic-plane (|b| < 5 deg) mean intensity when ``sky.steps`` doubles.

Goal (issue "sky maps"): nside 256 in < 3 min on 2 cores; agreement with quad within 1e-3.

    python benchmarks/bench_sky.py --store /tmp/paper.zarr --preset paper
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def quad_reference(store: str, config, l_deg: np.ndarray, b_deg: np.ndarray) -> tuple[np.ndarray, float]:
    """Intensity of each direction for every column by adaptive quadrature (scipy ``quad_vec``), and seconds per ray.

    A straightforward implementation: q(s) = sum_c n_c(R, z) L_bar_c(R, E) evaluated along
    each ray by adaptive quadrature, independently of the stage's Gauss-Legendre nodes and
    operators.
    """
    from scipy.integrate import quad_vec

    from tasks.kernels.galaxy import COMPONENTS, PC_CM, component_densities
    from tasks.kernels.los import KPC_CM, exit_distance
    from tasks.stages.sky import component_modes, emissivity_inputs

    g = config.galaxy
    lbar = emissivity_inputs(store, "reference", component_modes(g))
    R_grid = lbar["R"]
    out = []
    t0 = time.perf_counter()
    for l, b in zip(l_deg, b_deg):
        D = float(exit_distance(l, b, g.R_sun, config.sky.z_observer, g.R_max, g.z_max))
        lr, br = np.radians(l), np.radians(b)

        def q(s):
            x = g.R_sun - s * np.cos(br) * np.cos(lr)
            y = s * np.cos(br) * np.sin(lr)
            R, z = np.hypot(x, y), abs(config.sky.z_observer + s * np.sin(br))
            dens = component_densities(R, z, g)
            val = 0.0
            for c in COMPONENTS:
                L = lbar[c][0]
                if L.ndim > 1:  # linear in R between grid nodes, as the stage interpolates
                    i = int(np.clip(np.searchsorted(R_grid, R, side="right") - 1, 0, len(R_grid) - 2))
                    t = min(max((R - R_grid[i]) / (R_grid[i + 1] - R_grid[i]), 0.0), 1.0)
                    L = (1 - t) * L[i] + t * L[i + 1]
                val = val + dens[c] / g.mean_stellar_mass / PC_CM**3 * L
            return val

        s_c = min(max(g.R_sun * np.cos(br) * np.cos(lr), 0.0), D)
        pts = [s_c] if 0 < s_c < D else None
        v, _ = quad_vec(q, 0.0, D, points=pts, epsrel=1e-9, epsabs=0.0, limit=2000)
        out.append(v * KPC_CM / (4 * np.pi))
    return np.array(out), (time.perf_counter() - t0) / len(l_deg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--preset", default="paper", choices=["paper", "quick"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-ref", type=int, default=200)
    args = ap.parse_args()

    import cube
    from tasks.cluster import make_client
    from tasks.config import load_preset
    from tasks.runner import run
    from tasks.stages.sky import component_modes, emissivity_inputs, galaxy_intensity

    config = load_preset(args.preset)
    with make_client("local", args.workers) as client:
        res = run(config, args.store, client=client, stages=["sky", "sed"]).stages
        worker_rss = client.run(_peak_rss_mb)
    sky, sed = res["sky"], res["sed"]
    n_pix = cube.open(args.store, "sky").sizes["pixel"]
    n_E = cube.open(args.store, "sky").sizes["energy"]
    print(f"sky: nside {config.sky.nside} ({n_pix} pixels) x {n_E} energies x 2 scenarios x 2 messengers, "
          f"{config.sky.steps} nodes per ray: {sky.chunks_computed}/{sky.chunks_total} chunks in {sky.seconds:.1f} s "
          f"on {args.workers} workers ({sky.seconds * args.workers / max(n_pix, 1) * 1e6:.0f} us per pixel-core)")
    print(f"sed: {sed.chunks_computed}/{sed.chunks_total} regions in {sed.seconds:.1f} s")
    print(f"peak RSS: workers {', '.join(f'{v:.0f}' for v in worker_rss.values())} MB; client {_peak_rss_mb():.0f} MB")

    # reference on random pixels
    m = cube.open(args.store, "sky")
    rng = np.random.default_rng(0)
    pix = np.sort(rng.choice(n_pix, args.n_ref, replace=False))
    l, b = m.l.values[pix], m.b.values[pix]
    got = m.intensity.isel(pixel=pix).transpose("pixel", "scenario", "messenger", "energy").values.reshape(len(pix), -1)
    k_all = got.shape[1]
    ref, t_quad = quad_reference(args.store, config, l, b)
    pos = ref > 0
    diff = np.abs(got[pos] / ref[pos] - 1).max()
    payload = {"galaxy": config.galaxy, "z_obs": config.sky.z_observer, "steps": config.sky.steps, "modes": component_modes(config.galaxy)}
    lbar = emissivity_inputs(args.store, "bench", payload["modes"])
    t0 = time.perf_counter()
    galaxy_intensity(l, b, payload, lbar)
    t_ours = (time.perf_counter() - t0) / len(l)
    print(f"quad_vec reference on {len(pix)} random pixels, all {k_all} (energy, scenario, messenger) columns: "
          f"max |map / quad - 1| = {diff:.2e}; per pixel: ours {t_ours * 1e3:.2f} ms, quad_vec {t_quad * 1e3:.0f} ms "
          f"(x{t_quad / t_ours:,.0f}); a per-energy quad would redo the geometry {k_all} times")

    # convergence in steps, for the Galactic plane
    from tasks.kernels.regions import BUILTIN_REGIONS, region_nodes

    lp, bp, wp = region_nodes(BUILTIN_REGIONS["galactic_plane"], config.sky.region_dl, config.sky.region_b_nodes)
    base = wp @ galaxy_intensity(lp, bp, payload, lbar)[0] / wp.sum()
    double = dict(payload, steps=2 * config.sky.steps)
    fine = wp @ galaxy_intensity(lp, bp, double, lbar)[0] / wp.sum()
    finer_l, finer_b, finer_w = region_nodes(BUILTIN_REGIONS["galactic_plane"], config.sky.region_dl / 2, 2 * config.sky.region_b_nodes)
    fine_q = finer_w @ galaxy_intensity(finer_l, finer_b, payload, lbar)[0] / finer_w.sum()
    print(f"Galactic plane mean intensity: doubling steps changes it by {np.abs(fine / base - 1).max():.2e}, "
          f"halving the region quadrature spacing by {np.abs(fine_q / base - 1).max():.2e}")


if __name__ == "__main__":
    main()
