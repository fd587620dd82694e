"""Per-template luminosities and the HAWC calibration (docs/physics.md P3-P4)."""


import numpy as np
import pytest

from .solar_fixture import radius_grid, solar_template

from catalogs import xsec
from catalogs.cr_spectrum import primary_energy_grid
from tasks.kernels.luminosity import (
    AU_CM,
    combine_scenarios,
    flux_at_earth,
    hawc_calibration_factor,
    hawc_flux,
    template_luminosity,
    yield_matrix,
)
from .quadrature import FINE, fine_quad


EP = primary_energy_grid(0.1, 1e5, 10)
E = np.logspace(-1, 4, 76)  # 15 per decade, 1 TeV at index 15
I1 = 15
N_NUC = 1.8


@pytest.fixture(scope="module")
def xs():
    return xsec.sigma_inel(EP), np.stack([xsec.dsigma_dE("gamma", EP, E), xsec.dsigma_dE("nu", EP, E)])


@pytest.fixture(scope="module")
def sun(xs):
    s = solar_template()
    res = template_luminosity(s["radius"], s["rho"], s["v_conv"], s["column"], s["R_star"],
                              s["mass_init"], s["age"], s["stage"], EP, xs[0], xs[1], **FINE)
    return s, res


def black_sphere(R, xs):
    K = yield_matrix(EP, *xs)
    return N_NUC * 4 * np.pi**2 * R**2 * K.sum(axis=1)  # (2, n_E), Gamma = 1


def test_uniform_thick_star_is_black_sphere_for_neutrinos(xs):
    r = radius_grid(300)
    n = r.size
    R = np.array([7e10])
    res = template_luminosity(r, np.full((1, n), 1.0), np.zeros((1, n)), np.full((1, n), 10.0), R,
                              [1.0], [4.57e9], ["MS"], EP, *xs, **FINE)
    bound = black_sphere(R[0], xs)[1]
    sel = bound > 0
    for scen in (0, 1):
        np.testing.assert_allclose(res.L[0, scen, 1, sel], bound[sel], rtol=1e-2)
    assert res.G_ballistic[0, 1] / R[0] ** 2 == pytest.approx(np.full(EP.size, 0.5), rel=1e-3)
    # no field: every mirroring trajectory is unmirrored -> full target, no gamma rays
    assert np.all(res.G_mirror[0, 0] == 0) and np.allclose(res.G_mirror[0, 1], 1.0)


def test_empty_star_gives_zero(xs):
    r = radius_grid(100)
    n = r.size
    res = template_luminosity(r, np.zeros((2, n)), np.full((2, n), 1e5), np.zeros((2, n)),
                              [7e10, 7e11], [1.0, 5.0], [1e9, 1e7], ["MS", "MS"], EP, *xs, **FINE)
    assert np.all(res.L == 0) and np.all(res.L_mirror == 0)


def test_scenarios_off_main_sequence_are_ballistic(xs):
    s = solar_template()
    res = template_luminosity(s["radius"], np.repeat(s["rho"], 3, 0), np.repeat(s["v_conv"], 3, 0),
                              np.repeat(s["column"], 3, 0), np.repeat(s["R_star"], 3), [1.0, 1.0, 1.6],
                              [4.57e9] * 3, ["MS", "HG+RGB", "MS"], EP, *xs, **FINE)
    np.testing.assert_array_equal(res.L[1:, 0], res.L[1:, 1])
    assert np.all(res.L_mirror[1:] == 0) and res.F_sur[0] > 0 and np.all(res.F_sur[1:] == 0)
    np.testing.assert_allclose(res.L[0, 1], combine_scenarios(res.L[:1, 0], res.L_mirror[:1], res.F_sur[:1])[0])
    # caller-supplied surface parameters: F_sur = 0 collapses the scenario to ballistic
    r0 = template_luminosity(s["radius"], s["rho"], s["v_conv"], s["column"], s["R_star"], [1.0], [4.57e9],
                             ["MS"], EP, *xs, F_sur=[0.0], f_B=[0.7], **FINE)
    np.testing.assert_array_equal(r0.L[0, 0], r0.L[0, 1])
    np.testing.assert_allclose(r0.L_mirror[0], res.L_mirror[0], rtol=1e-12)


def test_sun_against_hawc_and_black_sphere(sun, xs):
    s, res = sun
    f = flux_at_earth(res.L[0], AU_CM)  # (scenario, messenger, E)
    hawc = hawc_flux(E)
    # ballistic well below HAWC at 1 TeV
    assert f[0, 0, I1] < hawc[I1] / 3
    # uncalibrated mirroring scenario >> ballistic at 1 TeV, and softer over 0.5-2.6 TeV
    assert f[1, 0, I1] > 10 * f[0, 0, I1]
    sel = (E >= 0.5) & (E <= 2.6)
    slope = lambda y: np.polyfit(np.log(E[sel]), np.log(y[sel]), 1)[0]  # noqa: E731
    assert slope(f[1, 0]) < slope(f[0, 0])
    assert slope(res.L_mirror[0, 0]) < slope(f[0, 0])
    # calibration of the solar mirroring scenario to HAWC
    # The least-squares fit (log space, 0.5-2.6 TeV) leaves the solar fixture 8% above HAWC at
    # 1 TeV because the mirrored spectrum is curved there (efficiency peak at E_p ~ 3 TeV);
    # issue #4's 5% holds for the pivot fit. Both are checked (abs=0: fluxes are ~1e-12).
    for method, tol in (("lsq", 0.10), ("pivot", 1e-9)):
        cal = hawc_calibration_factor(E, res.L_mirror[0, 0], f_sur=res.F_sur[0],
                                      L_ballistic_sun_gamma=res.L[0, 0, 0], method=method)
        Lc = combine_scenarios(res.L[:, 0], res.L_mirror, res.F_sur, cal)[0, 0]
        assert flux_at_earth(Lc)[I1] == pytest.approx(hawc[I1], rel=tol, abs=0)
        ratio = flux_at_earth(Lc)[sel] / hawc[sel]
        assert np.all((ratio > 0.7) & (ratio < 1.3))
    # neutrinos: below the black-sphere bound and (ballistic) within 10x of it
    bound = flux_at_earth(black_sphere(s["R_star"][0], xs)[1])[I1]
    assert bound * E[I1] ** 2 == pytest.approx(2.8e-11, rel=0.1, abs=0)
    assert f[0, 1, I1] <= bound and f[1, 1, I1] <= bound * (1 + 1e-9)
    assert f[0, 1, I1] > bound / 10


def test_hawc_calibration_closed_form():
    L = 3.7 * hawc_flux(E) * 4 * np.pi * AU_CM**2
    assert hawc_calibration_factor(E, L) == pytest.approx(1 / 3.7, rel=1e-12)
    # with a fixed ballistic part the fitted scenario still reproduces an exact power law
    Lb = 0.2 * hawc_flux(E) * 4 * np.pi * AU_CM**2
    c = hawc_calibration_factor(E, L, f_sur=0.5, L_ballistic_sun_gamma=Lb)
    assert 0.5 * c * 3.7 + 0.5 * 0.2 == pytest.approx(1.0, rel=1e-6)
    assert flux_at_earth(4 * np.pi * 4.0, 2.0) == pytest.approx(1.0)
    # pivot: exact at the grid point nearest 1 TeV
    Lp = L * (E / 1.0) ** 0.3
    c = hawc_calibration_factor(E, Lp, method="pivot")
    assert c * flux_at_earth(Lp)[I1] == pytest.approx(hawc_flux(E)[I1], rel=1e-12, abs=0)


# cheaper settings of benchmarks/convergence_yields.py (6 x 24 directions on u in [-5, 6], 3 Gauss
# nodes, node_tol 0.04, saturation 12): < 1e-3 on real main-sequence templates, ~2.4x faster
CHEAP = dict(n_gamma=24, u_min=-5.0, u_max=6.0, n_gauss=3, node_tol=0.04, saturation=12.0)


@pytest.mark.slow
@pytest.mark.parametrize("quad", [{}, CHEAP], ids=["default", "cheap"])
def test_quadrature_converged(sun, xs, quad):
    """Default grids (n_b = 128, 6 x 48 directions, 4 Gauss nodes, node_tol 0.03) vs doubled: < 1e-3.

    Gamma rays are checked where the mirroring luminosity matters (E <= 100 TeV; above, the
    mirrored gamma-ray yield is < 1e-3 of the ballistic one in the scenario); neutrinos
    everywhere.
    """
    s, res = sun
    if quad:
        res = template_luminosity(s["radius"], s["rho"], s["v_conv"], s["column"], s["R_star"],
                                  s["mass_init"], s["age"], s["stage"], EP, xs[0], xs[1], **fine_quad(**quad))
    fine = template_luminosity(s["radius"], s["rho"], s["v_conv"], s["column"], s["R_star"],
                               s["mass_init"], s["age"], s["stage"], EP, xs[0], xs[1],
                               n_b=256, **fine_quad(n_mu_b=12, n_gamma=96, n_gauss=5, saturation=40.0))
    sel = E <= 100
    np.testing.assert_allclose(res.L_mirror[0, 0, sel], fine.L_mirror[0, 0, sel], rtol=1e-3)
    np.testing.assert_allclose(res.L_mirror[0, 1], fine.L_mirror[0, 1], rtol=1e-3)
    np.testing.assert_allclose(res.L[0, :, :, sel], fine.L[0, :, :, sel], rtol=1e-3)
    np.testing.assert_allclose(res.L[0, :, 1], fine.L[0, :, 1], rtol=1e-3)


def test_batching_does_not_change_results(xs):
    # chunks are recomputed in different groupings: every template must come out bit-identical
    s = solar_template()
    rng = np.random.default_rng(2)
    n = 4
    rho = s["rho"] * 10 ** rng.uniform(-0.5, 0.5, (n, 1))
    v = s["v_conv"] * 10 ** rng.uniform(-0.3, 0.3, (n, 1))
    col = s["column"] * 10 ** rng.uniform(-0.3, 0.3, (n, 1))
    R = s["R_star"][0] * rng.uniform(0.3, 1.2, n)
    m = np.array([0.8, 1.0, 1.2, 2.0])
    age = np.full(n, 3e9)
    stage = np.array(["MS", "MS", "HG+RGB", "MS"])
    sel = slice(0, None, 4)
    ep, sig, ds = EP[sel], xs[0][sel], xs[1][:, sel]
    batch = template_luminosity(s["radius"], rho, v, col, R, m, age, stage, ep, sig, ds, **FINE)
    for idx in ([1], [3, 1], [1, 0, 2]):
        part = template_luminosity(s["radius"], rho[idx], v[idx], col[idx], R[idx], m[idx], age[idx], stage[idx],
                                   ep, sig, ds, **FINE)
        for field in batch._fields:
            np.testing.assert_array_equal(getattr(part, field), getattr(batch, field)[idx])


def test_calibration_scales_gamma_rays_only_by_default():
    # L_mirror = 1 and L_ballistic = 0: the mirroring scenario is F cal (gamma) and F (nu) by
    # default, F cal for both with calibration_applies_to="both".
    Lb, Lm, F = np.zeros((1, 2, 3)), np.ones((1, 2, 3)), np.array([0.25])
    got = combine_scenarios(Lb, Lm, F, 4.0)
    np.testing.assert_array_equal(got[0, 0], 1.0)
    np.testing.assert_array_equal(got[0, 1], 0.25)
    np.testing.assert_array_equal(combine_scenarios(Lb, Lm, F, 4.0, "both")[0], 1.0)
    with pytest.raises(ValueError, match="calibration_applies_to"):
        combine_scenarios(Lb, Lm, F, 4.0, "nu")


def test_the_calibrated_sun_keeps_its_neutrinos_below_the_black_sphere(sun, xs):
    s, _ = sun
    res = template_luminosity(s["radius"], s["rho"], s["v_conv"], s["column"], s["R_star"],
                              s["mass_init"], s["age"], s["stage"], EP, xs[0], xs[1], calibration=16.0, **FINE)
    both = template_luminosity(s["radius"], s["rho"], s["v_conv"], s["column"], s["R_star"],
                               s["mass_init"], s["age"], s["stage"], EP, xs[0], xs[1], calibration=16.0,
                               calibration_applies_to="both", **FINE)
    bound = black_sphere(s["R_star"][0], xs)[1][I1]
    assert res.L[0, 1, 1, I1] <= bound * (1 + 1e-9)
    assert both.L[0, 1, 1, I1] > bound  # the literal reading breaks the bound (docs/physics.md P4)
    np.testing.assert_array_equal(res.L[0, :, 0], both.L[0, :, 0])  # gamma rays identical


def test_pair_absorption_off(sun, xs):
    s, res = sun
    free = template_luminosity(s["radius"], s["rho"], s["v_conv"], s["column"], s["R_star"],
                               s["mass_init"], s["age"], s["stage"], EP, xs[0], xs[1], pair_absorption=False, **FINE)
    # ballistic: Gamma_gamma = Gamma_nu chord by chord, so the b-integrated efficiencies agree
    np.testing.assert_allclose(free.G_ballistic[0, 0], free.G_ballistic[0, 1], rtol=1e-12)
    np.testing.assert_array_equal(free.G_ballistic[0, 1], res.G_ballistic[0, 1])
    assert np.all(free.L[0, :, 0] >= res.L[0, :, 0]) and np.all(free.L_mirror[0, 0] >= res.L_mirror[0, 0])
    np.testing.assert_array_equal(free.L[0, :, 1], res.L[0, :, 1])
    assert free.L[0, 0, 0, I1] > 2 * res.L[0, 0, 0, I1]  # most ballistic chords are thick
