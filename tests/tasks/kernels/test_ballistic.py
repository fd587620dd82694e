"""Ballistic efficiencies and interaction lengths (docs/physics.md P2-P3)."""

import numpy as np
import pytest

from tasks.kernels.ballistic import gamma_efficiency, lambda_pair, lambda_pp, neutrino_efficiency
from tasks.kernels.reference import ballistic_efficiency_quad


def test_lengths():
    assert lambda_pp(34.9) == pytest.approx(47.9, rel=2e-3)  # docs/physics.md P2
    assert lambda_pair(0.70) == pytest.approx(90.0, rel=1e-3)
    assert lambda_pair(1.0) == pytest.approx(9 / 7 * 63.04)
    assert np.isinf(lambda_pp(0.0))


@pytest.mark.parametrize("T", [0.0, 1e-3, 5.0, 47.9, 200.0, 3000.0])
@pytest.mark.parametrize("lp, lg", [(47.9, 90.0), (90.0, 47.9), (60.0, 60.0), (60.0, 60.0 * (1 + 1e-9))])
def test_gamma_formula_matches_integration(T, lp, lg):
    g, n = ballistic_efficiency_quad(T, lp, lg)
    assert gamma_efficiency(T, lp, lg) == pytest.approx(g, rel=1e-9, abs=1e-300)
    assert neutrino_efficiency(T, lp) == pytest.approx(n, rel=1e-9, abs=1e-300)


def test_limits_and_bounds():
    T = np.logspace(-6, 6, 200)
    g = gamma_efficiency(T, 47.9, 90.0)
    assert np.all((g >= 0) & (g <= 1)) and np.all(np.isfinite(g))
    # thin: Gamma_gamma -> T/lambda_pp; thick: -> 0 like exp(-T/lambda_pair)
    assert gamma_efficiency(1e-6, 47.9, 90.0) == pytest.approx(1e-6 / 47.9, rel=1e-6, abs=0)
    assert gamma_efficiency(1e4, 47.9, 90.0) < 1e-40
    n = neutrino_efficiency(T, 47.9)
    assert n[-1] == 1.0 and np.all(np.diff(n) >= 0) and np.all(n <= 1)
    # equal lengths: (T/lambda) exp(-T/lambda), maximal 1/e at T = lambda
    assert gamma_efficiency(50.0, 50.0, 50.0) == pytest.approx(np.exp(-1), rel=1e-12)


def test_no_pair_absorption_is_the_unabsorbed_limit():
    # lambda_pair = inf (interactions.pair_absorption: false): every gamma ray made on the chord
    # escapes, so Gamma_gamma is the interaction probability 1 - exp(-T/lambda_pp) (docs/physics.md P3
    # with exp(-(T - x)/lambda_pair) = 1), written out here rather than taken from the module.
    T = np.concatenate([[0.0], np.logspace(-6, 5, 300)])
    for lp in (28.0, 47.9, 90.0):
        g = gamma_efficiency(T, lp, np.inf)
        np.testing.assert_allclose(g, -np.expm1(-T / lp), rtol=1e-12, atol=1e-300)  # 1 - exp(-T/lp)
        # and absorption can only remove gamma rays
        assert np.all(gamma_efficiency(T, lp, 90.0) <= g)
        assert np.all(gamma_efficiency(T[T > 10 * lp], lp, 90.0) < 0.5 * g[T > 10 * lp])
