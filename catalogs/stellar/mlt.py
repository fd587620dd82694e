"""Mixing-length theory (Böhm-Vitense 1958 in the form of Kippenhahn, Weigert & Weiss 2012,
sec. 7.2, Eqs. 7.7-7.18), with radiative losses of the bubbles.

    U  = 3 a c T^3 / (c_P rho^2 kappa l_m^2) * sqrt(8 H_P / (g delta))
    W  = nabla_rad - nabla_ad
    (xi - U)^3 + 8U/9 (xi^2 - U^2 - W) = 0,    xi^2 = nabla - nabla_ad + U^2
    nabla = nabla_ad + xi^2 - U^2,             v = l_m sqrt(g delta / (8 H_P)) (xi - U)
with l_m = alpha_mlt H_P. Schwarzschild criterion; v = 0 and nabla = nabla_rad where
nabla_rad <= nabla_ad. Units cgs.
"""
from __future__ import annotations

import numpy as np
from astropy import constants as _c

from .eos import A_RAD

__all__ = ["mlt_solve", "solve_mlt_cubic"]

C_LIGHT = _c.c.cgs.value


def solve_mlt_cubic(U, W, n_iter=60):
    """Root xi in [U, sqrt(U^2+W)] of (xi-U)^3 + 8U/9 (xi^2-U^2-W) = 0 (W > 0).

    The cubic is increasing and convex on that bracket and positive at its top, so
    Newton from the top converges monotonically.
    """
    return np.asarray(U, float) + _mlt_d(U, W, n_iter)


def _mlt_d(U, W, n_iter=60):
    """d = xi - U for the MLT cubic (see solve_mlt_cubic)."""
    U = np.asarray(U, float)
    W = np.asarray(W, float)
    # work with d = xi - U to avoid the cancellation xi^2 - U^2 when U >> sqrt(W)
    d = W / (np.sqrt(U * U + W) + U)
    c = 8.0 * U / 9.0
    for _ in range(n_iter):
        f = d ** 3 + c * (d * (d + 2.0 * U) - W)
        fp = 3.0 * d * d + 2.0 * c * (d + U)
        step = f / np.where(fp > 0, fp, 1.0)
        d = np.maximum(d - step, 0.0)
        if not np.any(np.abs(step) > 1e-12 * d):
            break
    return d


def mlt_solve(nabla_rad, nabla_ad, kappa, rho, T, P, g, c_P, delta, alpha_mlt=1.8):
    """MLT temperature gradient and convective velocity.

    Parameters
    ----------
    nabla_rad, nabla_ad : radiative and adiabatic gradients (dimensionless).
    kappa : cm^2 g^-1.  rho : g cm^-3.  T : K.  P : total pressure, dyn cm^-2.
    g : local gravity, cm s^-2.  c_P : erg g^-1 K^-1.  delta : -dlnrho/dlnT|_P.
    alpha_mlt : mixing length in pressure scale heights.

    Returns
    -------
    nabla : actual gradient dlnT/dlnP.
    v_conv : convective velocity, cm s^-1 (0 where radiative).
    """
    H_P = P / (rho * g)
    l_m = alpha_mlt * H_P
    conv = nabla_rad > nabla_ad
    W = np.where(conv, nabla_rad - nabla_ad, 0.0)
    U = (3.0 * A_RAD * C_LIGHT * T ** 3 / (c_P * rho ** 2 * kappa * l_m ** 2)
         * np.sqrt(8.0 * H_P / (g * delta)))
    d = _mlt_d(np.where(conv, U, 1.0), np.where(conv, W, 1.0))
    nabla = np.where(conv, nabla_ad + d * (d + 2.0 * U), nabla_rad)
    v = np.where(conv, l_m * np.sqrt(g * delta / (8.0 * H_P)) * d, 0.0)
    return nabla, v
