"""Speed of catalogs.stellar.envelope.envelope_profiles (profiles per second per core).

Run from the repository's top folder, with its virtualenv:
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_envelope.py [n_models]

A batch of random stars across 0.1-25 Msun: 60 % main-sequence-like (L ~ M^3.5 capped,
R ~ M^0.8), 40 % giants (R x 3-150, L x 3-100), Z log-uniform in 1e-4..0.03,
X = 0.76 - 3 Z; Teff follows from L and R (clipped to 2600-60000 K by adjusting R).
Shared radius grid as in the project (400 points, depth 1e-7..1). The one-off opacity
table build is timed separately.
"""
import os
import sys
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
from astropy import constants as c  # noqa: E402

from catalogs.stellar.envelope import envelope_profiles  # noqa: E402
from catalogs.stellar.opacity import opacity_table  # noqa: E402


def random_stars(n, seed=42):
    rng = np.random.default_rng(seed)
    M = 10 ** rng.uniform(np.log10(0.1), np.log10(25.0), n)
    L = np.minimum(M ** 3.5, 1.5e4 * M ** 1.0)
    R = M ** 0.8
    giant = rng.random(n) < 0.4
    R = np.where(giant, R * 10 ** rng.uniform(np.log10(3), np.log10(150), n), R)
    L = np.where(giant, L * 10 ** rng.uniform(np.log10(3), 2, n), L)
    Rsun = c.R_sun.cgs.value
    sig = c.sigma_sb.cgs.value
    Lsun = c.L_sun.cgs.value
    R_cm = R * Rsun
    Teff = (L * Lsun / (4 * np.pi * R_cm ** 2 * sig)) ** 0.25
    Tc = np.clip(Teff, 2600.0, 60000.0)
    R_cm = R_cm * (Teff / Tc) ** 2              # keep L, move R so that Teff is in range
    Z = 10 ** rng.uniform(-4, np.log10(0.03), n)
    X = 0.76 - 3.0 * Z
    return M, R_cm, L, Tc, X, Z, giant


def main(n=500):
    depth = np.concatenate([np.logspace(-7, 0, 399)[::-1], [0.0]])
    radius = 1.0 - depth
    t0 = time.perf_counter()
    opacity_table()
    t_tab = time.perf_counter() - t0
    M, R, L, Teff, X, Z, giant = random_stars(n)
    envelope_profiles(M[:4], R[:4], L[:4], Teff[:4], X[:4], Z[:4], radius)  # warm-up
    t0 = time.perf_counter()
    p = envelope_profiles(M, R, L, Teff, X, Z, radius)
    dt = time.perf_counter() - t0
    print(f"opacity table build (once): {t_tab:.2f} s")
    print(f"{n} models ({giant.sum()} giants), {radius.size} radius points: {dt:.2f} s")
    print(f"profiles per second per core: {n / dt:.1f}")
    print(f"converged: {p.converged.sum()}/{n}; not converged: "
          f"MS-like {(~p.converged & ~giant).sum()}, giants {(~p.converged & giant).sum()}")
    # electron-scattering Eddington factor, kappa_e = 0.2 (1 + X) cm^2/g
    gam = (0.2 * (1 + X) * L * c.L_sun.cgs.value
           / (4 * np.pi * c.c.cgs.value * c.G.cgs.value * M * c.M_sun.cgs.value))
    print(f"not converged with Gamma_e < 1: {(~p.converged & (gam < 1)).sum()}; "
          f"converged with Gamma_e > 1: {(p.converged & (gam > 1)).sum()}; "
          f"max Gamma_e of converged: {gam[p.converged].max():.2f}")
    if (~p.converged).any():
        bad = np.nonzero(~p.converged)[0][:10]
        for i in bad:
            g = c.G.cgs.value * M[i] * c.M_sun.cgs.value / R[i] ** 2
            print(f"  not converged: M={M[i]:.2f} R={R[i] / c.R_sun.cgs.value:.1f} Rsun "
                  f"L={L[i]:.3g} Teff={Teff[i]:.0f} logg={np.log10(g):.2f} Z={Z[i]:.4f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
