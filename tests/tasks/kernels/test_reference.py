"""Vectorised kernels against the quad reference (tasks/kernels/reference.py)."""


import numpy as np
import pytest

from .quadrature import fine_quad
from .solar_fixture import solar_template

from tasks.kernels import mirroring as M
from tasks.kernels.ballistic import lambda_pair
from tasks.kernels.chords import chord_columns, impact_grid
from tasks.kernels.luminosity import ballistic_efficiency, impact_weights
from tasks.kernels.reference import ballistic_G_quad, mirror_efficiency_quad

LG = lambda_pair(0.70)
LP = np.array([54.0, 47.9, 38.0])  # ~ lambda_pp at 0.1, 1, 100 TeV
EPS = np.array([0.1, 1.0, 100.0])


def templates():
    s = solar_template()
    r = s["radius"]
    sun = dict(rho=s["rho"][0], v=s["v_conv"][0], col=s["column"][0, -1], R=s["R_star"][0], fb=0.7)
    # a denser, larger toy with a field-free skin and a deeper-reaching field
    v = np.where(1 - r > 2e-5, 3 * s["v_conv"][0], 0.0)
    toy = dict(rho=s["rho"][0] * 4, v=v, col=6.0, R=4e11, fb=1.0)
    return r, [sun, toy]


@pytest.mark.slow
def test_ballistic_matches_quad():
    r, ts = templates()
    d = impact_grid(128, 1e-12)
    w = impact_weights(d)
    for t in ts:
        T = chord_columns(t["rho"][None], [t["R"]], r, d)
        gg, gn = ballistic_efficiency(T, LP, np.array([LG]))
        kern = t["R"] ** 2 * np.array([w @ gg[0], w @ gn[0]])
        ref = ballistic_G_quad(r, t["rho"], t["R"], LP, LG)
        np.testing.assert_allclose(kern, ref, rtol=1e-3)


@pytest.mark.slow
def test_mirroring_matches_quad():
    r, ts = templates()
    for t in ts:
        col = np.full((1, r.size), t["col"])
        kg, kn = M.mirror_efficiency(r, t["rho"][None], t["v"][None], col, [t["R"]], [t["fb"]],
                                     EPS[:2], LP[:2], LG, **fine_quad(n_mu_b=2, n_gamma=8))
        for i in range(2):
            rg, rn = mirror_efficiency_quad(r, t["rho"], t["v"], t["col"], t["R"], t["fb"], EPS[i], LP[i], LG,
                                            n_mu_b=2, n_gamma=8, u_max=9.0)
            assert kg[0, i] == pytest.approx(rg, rel=1e-3, abs=0)
            assert kn[0, i] == pytest.approx(rn, rel=1e-3, abs=0)


def test_the_sun_at_1_TeV_matches_quad():
    """The cheap default-suite case of the two slow tests: the solar template at lambda_pp(1 TeV).

    The quad reference integrates each chord and trajectory adaptively (tasks/kernels/reference.py),
    sharing no quadrature node with the kernels.
    """
    r, (sun, _) = templates()
    d = impact_grid(128, 1e-12)
    T = chord_columns(sun["rho"][None], [sun["R"]], r, d)
    gg, gn = ballistic_efficiency(T, LP[1:2], np.array([LG]))
    kern = sun["R"] ** 2 * np.array([impact_weights(d) @ gg[0], impact_weights(d) @ gn[0]])
    np.testing.assert_allclose(kern, ballistic_G_quad(r, sun["rho"], sun["R"], LP[1:2], LG), rtol=1e-3)
    col = np.full((1, r.size), sun["col"])
    kg, kn = M.mirror_efficiency(r, sun["rho"][None], sun["v"][None], col, [sun["R"]], [sun["fb"]],
                                 EPS[1:2], LP[1:2], LG, **fine_quad(n_mu_b=2, n_gamma=8))
    rg, rn = mirror_efficiency_quad(r, sun["rho"], sun["v"], sun["col"], sun["R"], sun["fb"], EPS[1], LP[1], LG,
                                    n_mu_b=2, n_gamma=8, u_max=9.0)
    assert kg[0, 0] == pytest.approx(rg, rel=1e-3, abs=0)
    assert kn[0, 0] == pytest.approx(rn, rel=1e-3, abs=0)
