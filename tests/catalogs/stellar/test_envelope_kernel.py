"""The compiled structure integration (catalogs/stellar/envelope_kernel.py) against the numpy code it replaced.

The oracle (envelope_numpy_oracle.py) is the previous numpy integration, verbatim; the kernels
promise the same floating-point operations in the same order, including the lockstep Newton
iterations that make a star's last bits depend on its batch, so every comparison is exact.
"""
import math

import numba as nb
import numpy as np
import pytest
from astropy import constants as c

from catalogs.stellar.envelope import _integrate, envelope_profiles
from tests.catalogs.stellar import envelope_numpy_oracle as oracle

R_SUN = c.R_sun.cgs.value
L_SUN = c.L_sun.cgs.value
SIGMA = c.sigma_sb.cgs.value


def _stars(n, seed):
    """Main-sequence-like stars and giants over 0.1-25 Msun and Z 1e-4..0.03 (as benchmarks/bench_envelope.py),
    plus three that fail: a hot stripped E-AGB star (super-Eddington envelope), an atmosphere above the
    Eddington limit (1 Msun at 1000 Rsun and 30 kK), and one that is super-Eddington throughout."""
    rng = np.random.default_rng(seed)
    M = 10 ** rng.uniform(-1, np.log10(25.0), n)
    L = np.minimum(M**3.5, 1.5e4 * M)
    R = M**0.8
    giant = rng.random(n) < 0.4
    R = np.where(giant, R * 10 ** rng.uniform(np.log10(3), np.log10(150), n), R)
    L = np.where(giant, L * 10 ** rng.uniform(np.log10(3), 2, n), L)
    R_cm = R * R_SUN
    Teff = (L * L_SUN / (4 * np.pi * R_cm**2 * SIGMA)) ** 0.25
    Tc = np.clip(Teff, 2600.0, 60000.0)
    R_cm = R_cm * (Teff / Tc) ** 2
    Z = 10 ** rng.uniform(-4, np.log10(0.03), n)
    M = np.concatenate([M, [6.0, 1.0, 1.0]])
    L = np.concatenate([L, [1.5e5, 1e6, 1e6]])
    Tc = np.concatenate([Tc, [9.0e4, 8000.0, 3.0e4]])
    R_cm = np.concatenate([R_cm, [np.sqrt(1.5e5 * L_SUN / (4 * np.pi * SIGMA)) / 9.0e4**2, 100 * R_SUN, 1000 * R_SUN]])
    Z = np.concatenate([Z, [0.02, 0.02, 0.02]])
    return M, R_cm, L, Tc, 0.76 - 3.0 * Z, Z


KEYS = ("Pg_s", "col_s", "ok", "nodes", "vnode", "k_stop", "done", "fail", "bad_step", "gamma_max", "logT_gmax", "n_used")


@pytest.mark.parametrize(
    "seed,kwargs",
    [
        (1, {}),
        (2, {"alpha_mlt": 2.1, "n_steps": 60, "column_stop": 1e7}),
        (3, {"atmosphere": "simple", "n_tau": 8}),
    ],
)
def test_integration_matches_numpy_oracle_bitwise(seed, kwargs):
    stars = _stars(30, seed)
    ref = oracle.integrate(*stars, **kwargs)
    got = _integrate(*stars, **kwargs)
    for k in KEYS:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k, strict=True)
    # the set covers what matters: converged stars, a failed envelope, a failed atmosphere
    assert ref["ok"].sum() >= 30 and not ref["ok"][-1] and ref["fail"][-1]
    assert ref["bad_step"][-3] and ref["bad_step"][-2] and np.nanmax(ref["gamma_max"]) > 1.0
    assert (~ref["fail"]).sum() >= 25


def test_batch_dependence_kept():
    """Alone, a star matches the oracle alone exactly; in a batch its bits may move (lockstep Newton), by rounding only."""
    stars = _stars(12, 5)
    alone = [s[:1] for s in stars]
    np.testing.assert_array_equal(_integrate(*alone)["nodes"], oracle.integrate(*alone)["nodes"])
    together = _integrate(*stars)["nodes"][:, :, 0]
    n = min(together.shape[1], _integrate(*alone)["nodes"].shape[1])
    np.testing.assert_allclose(together[:, :n], _integrate(*alone)["nodes"][:, :n, 0], rtol=1e-12, equal_nan=True)


def test_profiles_of_a_sun_unchanged():
    """Closed numbers of the solar model (as the numpy code gave them): pins the resampled output too."""
    e = envelope_profiles(1.0, 6.957e10, 1.0, 5772.0, 0.70, 0.02, np.linspace(0.0, 1.0, 9))
    ref = oracle.integrate(1.0, 6.957e10, 1.0, 5772.0, 0.70, 0.02)
    assert e.P_surf[0] == ref["Pg_s"][0] + oracle.A_RAD * 5772.0**4 / 3.0
    assert e.column_surf[0] == ref["col_s"][0]
    assert e.rho[0, -1] == math.exp(ref["nodes"][4, 0, 0])


@nb.njit(cache=False, error_model="numpy")
def _libm(x, p):
    out = np.empty((6, x.size))
    for i in range(x.size):
        out[0, i] = np.exp(x[i])
        out[1, i] = np.log(p[i])
        out[2, i] = np.log10(p[i])
        out[3, i] = p[i] ** 1.5
        out[4, i] = p[i] ** 4.0
        out[5, i] = 10.0 ** (x[i] / 100.0)
    return out


def test_compiled_transcendentals_are_numpys():
    """The kernels' exact agreement rests on numba's exp/log/log10/pow giving numpy's bits on this machine."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-700, 700, 20000), rng.uniform(-5, 5, 20000)])
    p = np.exp(rng.uniform(-300, 300, x.size))
    got = _libm(x, p)
    with np.errstate(over="ignore"):
        ref = [np.exp(x), np.log(p), np.log10(p), p**1.5, p**4, 10.0 ** (x / 100.0)]
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)
