"""Chord column densities T(b) through spherical stars (docs/physics.md P3, paper Eq. 4).

T(b) = 2 * integral_b^R rho(r) r dr / sqrt(r^2 - b^2). With the substitution
r^2 = b^2 + s^2 (so r dr / sqrt(r^2 - b^2) = ds) the integrand is regular:
T(b) = 2 * integral_0^sqrt(R^2 - b^2) rho(sqrt(b^2 + s^2)) ds.

The density between radius-grid nodes is taken piecewise linear in r (``np.interp``), which
makes T(b) a *linear* function of the nodal densities: T_j = R * sum_i W_ji rho_i. The weight
matrix W depends only on the (shared) radius grid and the impact-parameter grid, so all
templates are handled by one matrix product (no per-template loop). Each segment is integrated
in s with Gauss-Legendre nodes; in s the integrand of a hat function is smooth (analytic), so a
few nodes per segment give W to ~1e-12.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["impact_grid", "chord_weights", "chord_columns"]


def impact_grid(n_b: int = 128, depth_min: float = 1.0e-12) -> np.ndarray:
    """Tangent-point depths d = 1 - b/R of the impact-parameter grid, ascending.

    ``d[0] = 0`` (grazing ray, b = R), then ``n_b - 1`` log-spaced depths from ``depth_min``
    to 1 (b = 0). Log spacing resolves the thin limb where gamma rays escape.

    Returns
    -------
    np.ndarray, shape (n_b,)
        Dimensionless depths of the tangent points.
    """
    if n_b < 3:
        raise ValueError("n_b >= 3")
    return np.concatenate([[0.0], np.logspace(np.log10(depth_min), 0.0, n_b - 1)])


def chord_weights(radius: ArrayLike, b_depth: ArrayLike, n_gauss: int = 6) -> np.ndarray:
    """Weights W (n_b, n_r) with T(b_j) = R * sum_i W[j, i] rho_i.

    Parameters
    ----------
    radius : array_like, shape (n_r,)
        r/R, ascending, radius[0] = 0, radius[-1] = 1.
    b_depth : array_like, shape (n_b,)
        Tangent depths d = 1 - b/R.
    n_gauss : int
        Gauss-Legendre nodes per radius segment (in the variable s).

    Returns
    -------
    np.ndarray, shape (n_b, n_r)
        Dimensionless weights; rho piecewise linear in r between nodes.
    """
    x = np.asarray(radius, dtype=float)
    beta = 1.0 - np.asarray(b_depth, dtype=float)  # b/R
    if x[0] != 0.0 or x[-1] != 1.0 or np.any(np.diff(x) <= 0):
        raise ValueError("radius must ascend from 0 to 1")
    gx, gw = np.polynomial.legendre.leggauss(n_gauss)
    xl, xh = x[:-1][None, :], x[1:][None, :]  # (1, n_seg)
    bb = beta[:, None]
    lo = np.maximum(xl, bb)
    active = xh > bb
    # s^2 = x^2 - b^2 computed as (x - b)(x + b) to keep precision at grazing incidence
    s_lo = np.sqrt(np.clip((lo - bb) * (lo + bb), 0.0, None))
    s_hi = np.sqrt(np.clip((xh - bb) * (xh + bb), 0.0, None))
    ds = np.where(active, s_hi - s_lo, 0.0)
    # nodes in s on [s_lo, s_hi]; (x(s) - x_l) = (s^2 - s_l^2)/(x(s) + x_l), s_l^2 = x_l^2 - b^2
    s_nodes = 0.5 * (s_lo + s_hi)[..., None] + 0.5 * ds[..., None] * gx  # (n_b, n_seg, g)
    x_nodes = np.sqrt(bb[..., None] ** 2 + s_nodes**2)
    sl2 = ((xl - bb) * (xl + bb))[..., None]
    frac = (s_nodes**2 - sl2) / (x_nodes + xl[..., None]) / (xh - xl)[..., None]
    # integral of the upper hat (x - x_l)/dx over the segment, and of 1
    up = 0.5 * ds * np.sum(gw * frac, axis=-1)
    w = np.zeros((beta.size, x.size))
    w[:, 1:] += up
    w[:, :-1] += ds - up
    return 2.0 * w


def chord_columns(
    rho: ArrayLike, R_star: ArrayLike, radius: ArrayLike, b_depth: ArrayLike, n_gauss: int = 6
) -> np.ndarray:
    """Chord columns T(b) for all templates.

    Parameters
    ----------
    rho : array_like, shape (n_m, n_r)
        Density on the radius grid (g cm^-3).
    R_star : array_like, shape (n_m,)
        Stellar radius (cm).
    radius : array_like, shape (n_r,)
        Shared radius grid r/R.
    b_depth : array_like, shape (n_b,)
        Tangent depths 1 - b/R (see :func:`impact_grid`).

    Returns
    -------
    np.ndarray, shape (n_m, n_b)
        T(b) in g cm^-2. Row by row (one matrix-vector product per template): a matrix-matrix
        product may sum in a different order depending on the batch size, and each template
        must come out bit-identical however the templates are batched.
    """
    w = chord_weights(radius, b_depth, n_gauss)
    rho = np.atleast_2d(np.asarray(rho, dtype=float))
    T = np.empty((rho.shape[0], w.shape[0]))
    for i, row in enumerate(rho):
        T[i] = w @ row
    return np.asarray(R_star, dtype=float)[:, None] * T
