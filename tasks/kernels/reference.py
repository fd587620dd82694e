"""Slow, obviously-correct reference (scipy.integrate.quad) for the yield kernels.

Same physics and the same continuous model as the vectorised kernels
(:mod:`tasks.kernels.chords`, :mod:`tasks.kernels.ballistic`, :mod:`tasks.kernels.mirroring`):

* rho(r) piecewise linear in r (``np.interp`` on the radius grid) for the chords;
* for the slab: rho(h), B(h) piecewise linear in h; nodal Y_k, Phi_k are quad integrals; between
  nodes Phi is linear in Y; a field-free layer of column[-1] sits above the photosphere.

Everything is integrated per chord / per trajectory with ``quad`` (the singular turning-point
segment with the algebraic weight (Y_m - Y)^-1/2). Direction averages use the kernel's fixed
direction nodes (their convergence is tested separately). Used by tests and
``benchmarks/bench_yields.py``; not for production.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import quad, quad_vec

from tasks.kernels.mirroring import direction_grid, rigidity_column

__all__ = [
    "chord_column_quad",
    "ballistic_efficiency_quad",
    "ballistic_G_quad",
    "slab_nodes_quad",
    "trajectory_quad",
    "mirror_efficiency_quad",
]

_Q = dict(epsabs=0.0, epsrel=1e-10, limit=200)


def chord_column_quad(radius: np.ndarray, rho: np.ndarray, R: float, b_over_R: float) -> float:
    """T(b) = 2 R int_0^sqrt(1 - beta^2) rho(sqrt(beta^2 + s^2)) ds (g cm^-2), one chord."""
    beta = float(b_over_R)
    f = lambda s: np.interp(np.sqrt(beta * beta + s * s), radius, rho)  # noqa: E731
    # breakpoints at the radius nodes outside the tangent point
    xs = radius[radius > beta]
    sk = np.concatenate([[0.0], np.sqrt(np.clip((xs - beta) * (xs + beta), 0.0, None))])
    tot = sum(quad(f, lo, hi, **_Q)[0] for lo, hi in zip(sk[:-1], sk[1:]) if hi > lo)
    return 2.0 * R * tot


def ballistic_efficiency_quad(T: float, lam_pp: float, lam_pair: float) -> tuple[float, float]:
    """(Gamma_gamma, Gamma_nu) along a chord of column T by direct integration over x.

    The integrands live within ~800 lengths of the chord ends (beyond that they are below
    e^-800), so only those stretches are integrated.
    """
    if T <= 0:
        return 0.0, 0.0
    cut_p, cut_g = 800.0 * lam_pp, 800.0 * lam_pair
    f = lambda x: np.exp(-x / lam_pp - (T - x) / lam_pair) / lam_pp  # noqa: E731
    parts = [(0.0, min(T, cut_p))]
    if T - cut_g > parts[0][1]:
        parts.append((T - cut_g, T))
    elif T > parts[0][1]:
        parts[0] = (0.0, T)
    g = sum(quad(f, lo, hi, **_Q)[0] for lo, hi in parts)
    n = quad(lambda x: np.exp(-x / lam_pp) / lam_pp, 0.0, min(T, cut_p), **_Q)[0]
    return g, n


def ballistic_G_quad(
    radius: np.ndarray, rho: np.ndarray, R: float, lam_pp: np.ndarray, lam_pair: float,
    d_min: float = 1e-12, n_breaks: int = 25, epsrel: float = 1e-7,
) -> np.ndarray:
    """int_0^R b db Gamma(b) (cm^2), shape (2 [gamma, nu], n_p), adaptive over u = ln(1 - b/R).

    ``scipy.integrate.quad_vec`` (one adaptive integral for all E_p, since T(b) is shared);
    each chord column by :func:`chord_column_quad` and each efficiency by
    :func:`ballistic_efficiency_quad`. Chords with tangent depth below ``d_min`` (relative area
    < d_min) are neglected.
    """
    lam_pp = np.atleast_1d(np.asarray(lam_pp, dtype=float))

    def integrand(u: float) -> np.ndarray:
        d = np.exp(u)
        T = chord_column_quad(radius, rho, R, 1.0 - d)
        eff = np.array([ballistic_efficiency_quad(T, lp, lam_pair) for lp in lam_pp]).T
        return (1.0 - d) * d * eff

    pts = np.linspace(np.log(d_min), 0.0, n_breaks)[1:-1]
    val = quad_vec(integrand, np.log(d_min), 0.0, points=pts, epsrel=epsrel, epsabs=0.0)[0]
    return R * R * val


def slab_nodes_quad(
    radius: np.ndarray, rho: np.ndarray, v_conv: np.ndarray, column_surf: float, R: float,
    f_B: float, include_atmosphere: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Nodal Y_k, Phi_k (top of atmosphere, photosphere, then inward) by quad over depth."""
    h = R * (1.0 - radius[::-1])
    rh = rho[::-1]
    Bh = np.sqrt(4.0 * np.pi * f_B * np.clip(rh, 0, None)) * v_conv[::-1]
    fr = lambda x: np.interp(x, h, rh)  # noqa: E731
    fb = lambda x: np.interp(x, h, Bh)  # noqa: E731
    y0 = column_surf if include_atmosphere else 0.0
    Y = [0.0, y0]
    P = [0.0, 0.0]
    for lo, hi in zip(h[:-1], h[1:]):
        Y.append(Y[-1] + quad(fr, lo, hi, **_Q)[0])
        P.append(P[-1] + quad(fb, lo, hi, **_Q)[0])
    return np.array(Y), np.array(P)


def trajectory_quad(
    Y: np.ndarray, Phi: np.ndarray, a: float, gamma: float, E_p: float, lam_pp: float,
    lam_pair: float, skip: float = 1e-15,
) -> tuple[float, float]:
    """(Gamma_gamma, Gamma_nu) of one trajectory with quad (P4 formulas, see module doc).

    ``skip``: outward-leg segments whose integrand is bounded by exp(-Y_top/lambda_pair) < skip
    are not integrated.
    """
    phi_eff = a * float(rigidity_column(E_p))
    phi_m = phi_eff * (1.0 - gamma)
    mirrored = phi_m < Phi[-1]

    def one_minus_q(y_col: float, j: int) -> float:
        """1 - q = (Phi_m - Phi(Y))/Phi_eff, q = s n_x / a."""
        dY = Y[j + 1] - Y[j]
        ph = Phi[j] if dY == 0 else Phi[j] + (y_col - Y[j]) * (Phi[j + 1] - Phi[j]) / dY
        return (phi_m - ph) / phi_eff

    def nz(y_col: float, j: int) -> float:
        omq = one_minus_q(y_col, j)
        return a * np.sqrt(max(omq * (2.0 - omq), 0.0))

    segs = []  # (j, Y_lo, Y_hi, singular)
    for j in range(len(Y) - 1):
        if Phi[j] >= phi_m:
            break
        if Phi[j + 1] > phi_m:  # turning point inside: Y where Phi = Phi_m
            y_m = Y[j] + (phi_m - Phi[j]) * (Y[j + 1] - Y[j]) / (Phi[j + 1] - Phi[j])
            segs.append((j, Y[j], y_m, True))
            break
        segs.append((j, Y[j], Y[j + 1], False))

    def x_part(j: int, lo: float, hi: float, singular: bool, top: float | None = None) -> float:
        """int_lo^hi dY/n_z; if singular, hi is the turning point."""
        if hi <= lo:
            return 0.0
        if Y[j + 1] == Y[j]:
            return 0.0
        if singular and top is None:
            # n_z ~ sqrt(hi - Y): integrate sqrt(hi - Y)/n_z with the algebraic weight
            # n_z = a sqrt((1-q)(1+q)) and 1 - q = (hi - Y) slope/Phi_eff in this segment
            slope = (Phi[j + 1] - Phi[j]) / (Y[j + 1] - Y[j]) / phi_eff
            g = lambda y: 1.0 / (a * np.sqrt(slope * (2.0 - one_minus_q(y, j))))  # noqa: E731
            return quad(g, lo, hi, weight="alg", wvar=(0.0, -0.5), epsabs=0.0, epsrel=1e-10, limit=200)[0]
        return quad(lambda y: 1.0 / nz(y, j), lo, hi if top is None else top, **_Q)[0]

    x_nodes = [0.0]
    for j, lo, hi, sing in segs:
        x_nodes.append(x_nodes[-1] + x_part(j, lo, hi, sing))
    x_half = x_nodes[-1]
    x_tot = 2.0 * x_half if mirrored else x_half
    g_nu = -np.expm1(-x_tot / lam_pp)
    if not mirrored:
        return 0.0, g_nu
    g_gam = 0.0
    for (j, lo, hi, sing), x0 in zip(segs, x_nodes[:-1]):
        if hi <= lo or np.exp(-lo / lam_pair) < skip:
            continue

        def f(y: float) -> float:
            n = nz(y, j)
            if n <= 0.0:
                return 0.0
            x_in = x0 + (quad(lambda yy: 1.0 / nz(yy, j), lo, y, **_Q)[0] if y > lo else 0.0)
            return np.exp(-(x_tot - x_in) / lam_pp - y / (n * lam_pair)) / (n * lam_pp)

        g_gam += quad(f, lo, hi, **_Q)[0]
    return g_gam, g_nu


def mirror_efficiency_quad(
    radius: np.ndarray, rho: np.ndarray, v_conv: np.ndarray, column_surf: float, R: float,
    f_B: float, E_p: float, lam_pp: float, lam_pair: float, *, n_mu_b: int, n_gamma: int, u_max: float,
    u_min: float | None = None, include_atmosphere: bool = True,
) -> tuple[float, float]:
    """<Gamma_gamma>, <Gamma_nu> of one template at one E_p on the kernel's direction nodes."""
    Y, P = slab_nodes_quad(radius, rho, v_conv, column_surf, R, f_B, include_atmosphere)
    a, g, w = direction_grid(n_mu_b, n_gamma, u_max, u_min)
    res = np.array([trajectory_quad(Y, P, ai, gi, E_p, lam_pp, lam_pair) for ai, gi in zip(a, g)])
    return float(w @ res[:, 0]), float(w @ res[:, 1])
