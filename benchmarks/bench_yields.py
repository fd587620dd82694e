"""Speed of the per-template yield kernel (issue #4 item 1) and agreement with the quad reference.

Run single-core:  PYTHONPATH=. OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    python benchmarks/bench_yields.py [--n-templates 100] [--n-ref 20] \
        [--per-decade-p 10] [--per-decade-E 15] [--n-r 300] [--oracle 0]

Default grids: secondary energies 0.1 TeV - 10 PeV at 15/decade, primaries 0.1 TeV - 100 PeV
at 10/decade, 300 radius points; issue #4 quotes the paper grids
``--per-decade-p 20 --per-decade-E 20 --n-r 400``. The first call (numba compilation, or loading
it from the on-disk cache) is timed separately and not counted. ``--oracle N`` also compares the
mirroring efficiencies of N MS templates with the previous numpy implementation
(tests/tasks/kernels/mirroring_numpy_oracle.py) and times it. Templates are perturbed copies of the solar
test fixture (tests/tasks/kernels/solar_fixture.py: real MESA structure + assumed v_conv); "MS"
templates (mirroring computed) are the expensive case, post-MS ones are ballistic only.
The reference (tasks/kernels/reference.py) is far too slow for the full grids, so it is run on
``--n-ref`` templates at a few primary energies and a small direction grid, and compared with
the kernel run on the same nodes; the speed ratio is per (template x energy x direction).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "tasks" / "kernels"))

import mirroring_numpy_oracle as ORACLE  # noqa: E402
from solar_fixture import solar_template  # noqa: E402

from catalogs import xsec  # noqa: E402
from catalogs.cr_spectrum import primary_energy_grid  # noqa: E402
from tasks.kernels import reference as REF  # noqa: E402
from tasks.kernels.ballistic import lambda_pair, lambda_pp  # noqa: E402
from tasks.kernels.chords import chord_columns, impact_grid  # noqa: E402
from tasks.kernels.luminosity import ballistic_efficiency, impact_weights, template_luminosity  # noqa: E402
from tasks.kernels.mirroring import mirror_efficiency  # noqa: E402
from quadrature import FINE, fine_quad  # noqa: E402


def make_templates(n: int, seed: int = 0, stage: str = "MS", n_r: int = 300) -> dict:
    s = solar_template(n_r)
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.1, 1.4, n)
    return dict(
        radius=s["radius"],
        rho=s["rho"] * 10 ** rng.uniform(-0.5, 0.5, (n, 1)),
        v_conv=s["v_conv"] * 10 ** rng.uniform(-0.3, 0.3, (n, 1)),
        column=s["column"] * 10 ** rng.uniform(-0.3, 0.3, (n, 1)),
        R_star=s["R_star"][0] * m**0.8,
        mass_init=m,
        age=10 ** rng.uniform(8, 10, n),
        stage=np.array([stage] * n),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-templates", type=int, default=100)
    ap.add_argument("--n-ref", type=int, default=20)
    ap.add_argument("--per-decade-p", type=int, default=10)
    ap.add_argument("--per-decade-E", type=int, default=15)
    ap.add_argument("--n-r", type=int, default=300)
    ap.add_argument("--oracle", type=int, default=0)
    args = ap.parse_args()

    E_p = primary_energy_grid(0.1, 1e5, args.per_decade_p)
    E = np.logspace(-1, 4, 5 * args.per_decade_E + 1)
    sig = xsec.sigma_inel(E_p)
    ds = np.stack([xsec.dsigma_dE("gamma", E_p, E), xsec.dsigma_dE("nu", E_p, E)])
    print(f"grids: n_p={E_p.size}, n_E={E.size}, n_r={args.n_r}; threads=1")

    t = make_templates(1, stage="MS", n_r=args.n_r)
    t0 = time.perf_counter()
    template_luminosity(t["radius"], t["rho"], t["v_conv"], t["column"], t["R_star"], t["mass_init"],
                        t["age"], t["stage"], E_p, sig, ds, **FINE)
    print(f"first call (numba compile or cache load, not counted below): {time.perf_counter() - t0:.2f} s")

    for stage in ("MS", "HG+RGB"):
        t = make_templates(args.n_templates, stage=stage, n_r=args.n_r)
        t0 = time.perf_counter()
        template_luminosity(t["radius"], t["rho"], t["v_conv"], t["column"], t["R_star"], t["mass_init"],
                            t["age"], t["stage"], E_p, sig, ds, **FINE)
        dt = time.perf_counter() - t0
        print(f"kernel, all templates {stage:7s}: {args.n_templates / dt:8.1f} templates/s/core "
              f"({1e3 * dt / args.n_templates:.2f} ms each)")

    if args.oracle:
        t = make_templates(args.oracle, stage="MS", n_r=args.n_r)
        fb = np.full(args.oracle, 0.7)
        lp_all, lg0 = lambda_pp(sig), lambda_pair(0.70)
        targs = (t["radius"], t["rho"], t["v_conv"], t["column"], t["R_star"], fb, E_p, lp_all, lg0)
        t0 = time.perf_counter()
        new = mirror_efficiency(*targs, **FINE)
        t_new = time.perf_counter() - t0
        t0 = time.perf_counter()
        old = ORACLE.mirror_efficiency(*targs)
        t_old = time.perf_counter() - t0
        diff = [np.max(np.abs(new[k] / old[k] - 1)) for k in range(2)]
        print(f"mirror_efficiency vs previous numpy implementation ({args.oracle} MS templates): max rel diff "
              f"gamma {diff[0]:.2e}, nu {diff[1]:.2e}; {1e3 * t_old / args.oracle:.1f} ms -> "
              f"{1e3 * t_new / args.oracle:.2f} ms per template (x{t_old / t_new:.1f})")

    # --- reference comparison on n_ref templates ---
    n = args.n_ref
    if n <= 0:
        return
    t = make_templates(n, seed=1)
    eps = np.array([1.0, 30.0])
    lp = lambda_pp(xsec.sigma_inel(eps))
    lg = lambda_pair(0.70)
    fb = 0.7
    # ballistic
    d = impact_grid()
    w = impact_weights(d)
    t0 = time.perf_counter()
    T = chord_columns(t["rho"], t["R_star"], t["radius"], d)
    gg, gn = ballistic_efficiency(T, lp, np.full(n, lg))
    kern_b = (t["R_star"] ** 2)[:, None, None] * np.stack([gg.transpose(0, 2, 1) @ w, gn.transpose(0, 2, 1) @ w], 1)
    tk_b = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_b = np.array([REF.ballistic_G_quad(t["radius"], t["rho"][i], t["R_star"][i], lp, lg) for i in range(n)])
    tr_b = time.perf_counter() - t0
    err_b = np.max(np.abs(kern_b / ref_b - 1))
    print(f"ballistic G vs quad ({n} templates x {eps.size} E_p): max rel diff {err_b:.2e}; "
          f"quad {tr_b:.1f} s vs kernel {tk_b * 1e3:.2f} ms -> ratio {tr_b / tk_b:.0f}")
    # mirroring, small direction grid (2 x 8) on both sides
    t0 = time.perf_counter()
    ref_m = np.array([[REF.mirror_efficiency_quad(t["radius"], t["rho"][i], t["v_conv"][i], t["column"][i, -1],
                                                   t["R_star"][i], fb, eps[k], lp[k], lg, n_mu_b=2, n_gamma=8, u_max=9.0)
                       for k in range(eps.size)] for i in range(n)])
    tr_m = time.perf_counter() - t0
    for label, kw in (("default (node_tol=0.03, n_gauss=4)", {}),
                      ("exact model (node_tol=0, n_gauss=4)", dict(node_tol=0.0, n_gauss=4))):
        t0 = time.perf_counter()
        kg, kn = mirror_efficiency(t["radius"], t["rho"], t["v_conv"], t["column"], t["R_star"], np.full(n, fb),
                                   eps, lp, lg, **fine_quad(n_mu_b=2, n_gamma=8, **kw))
        tk_m = time.perf_counter() - t0
        err_g = np.max(np.abs(kg / ref_m[:, :, 0] - 1))
        err_n = np.max(np.abs(kn / ref_m[:, :, 1] - 1))
        print(f"mirroring <G> vs quad ({n} templates x {eps.size} E_p x 16 directions), kernel {label}: "
              f"max rel diff gamma {err_g:.2e}, nu {err_n:.2e}; quad {tr_m:.1f} s vs kernel {tk_m * 1e3:.1f} ms "
              f"-> ratio {tr_m / tk_m:.0f}")

if __name__ == "__main__":
    main()
