"""Magnetic-mirroring interaction efficiencies (docs/physics.md P4, paper Sec. II C).

Canonical-momentum, plane-parallel model (**[choice]**, contains paper Eqs. 8-9 as limits):

* depth h = R - r, horizontal field of one direction B(h) = sqrt(4 pi f_B rho) v_conv (paper
  Eq. 6), magnetic column Phi(h) = int_0^h B dh';
* a proton of energy E_p has rigidity Phi_p = E_p[eV] / 299.79 G cm; with n_B (conserved
  direction cosine along B), n_x0 (horizontal, across B) and sense s = +-1 the canonical momentum
  gives n_x(h) = n_x0 + s Phi/Phi_p and n_z^2 = 1 - n_B^2 - n_x^2;
* it turns where Phi(h_m) = Phi_p (sqrt(1 - n_B^2) - s n_x0); if Phi never gets there (field
  column exhausted at the bottom of the envelope/profile) it is *unmirrored*: it keeps going
  down, its gamma rays are absorbed (Gamma_gamma = 0) and it is a neutrino target with the whole
  straight plane-parallel column of the profile (Gamma_nu = 1 - exp(-X_in(bottom)/lambda_pp),
  which is 1 for any real star and 0 for an empty one);
* X_in(h) = int rho/|n_z| dh', X_tot = 2 X_in(h_m); gamma rays made on the outward leg cross the
  vertical column Y(h) over |n_z(h)|:
  Gamma_gamma = int_0^{h_m} rho/(|n_z| lambda_pp) exp(-X_c/lambda_pp) exp(-Y/(|n_z| lambda_pair)) dh,
  X_c = X_tot - X_in(h); Gamma_nu = 1 - exp(-X_tot/lambda_pp).

Continuous model shared with :mod:`tasks.kernels.reference`
------------------------------------------------------------
Nodes are the radius-grid nodes from the photosphere down, plus (``include_atmosphere``) a
field-free top layer holding the template column at the photosphere (P_surf/g), so the top node
is Y = 0, Phi = 0. Nodal Y_k and Phi_k are the trapezoid integrals of rho and B (exact for rho, B
piecewise linear in h). Between nodes Phi is taken *linear in Y* (B/rho constant per segment in
the Stieltjes sense; B = 0 segments are straight-line layers). In that model the inverse-sqrt
singularity at h_m integrates in closed form: with y = s n_x/sqrt(1 - n_B^2) = cos(psi),
n_z = a sin(psi) (a = sqrt(1 - n_B^2)) and X_in is linear in psi inside a segment, so

    X_segment = (Delta Y / a) * (Delta psi / Delta y),

computed with a cancellation-free arcsin form. The outward-leg gamma-ray integral uses
``n_gauss`` Gauss-Legendre nodes in psi per segment (integrand smooth in psi, vanishing at the
turning point).

Saturation: a trajectory that turns below the vertical column Y_m = ``saturation * lambda_pp``
(default 15) has X_half >= Y_m, so Gamma_nu = 1 to within exp(-2 Y_m/lambda_pp) = e^-30 and
Gamma_gamma <= exp(-X_half/lambda_pp) <= e^-15 = 3e-7 (absolute); such trajectories are not
integrated (most of them at high E_p). Of the others, a mirrored trajectory whose half-path
column exceeds ``dark_column`` lambda_pp (40) gets Gamma_gamma = 0 without the outward-leg
integral, which is below e^-40 = 4e-18 there (absolute; X_c >= X_half on that leg); Gamma_nu
is exact. Above 701 lambda_pp every term of that integral is an exact zero anyway.

Implementation: a compiled (numba) kernel, one template and one direction at a time, vectorised
over the primary energies ("lanes"). The turning point deepens with E_p, so with the lanes in
descending E_p the ones that still need a segment are a contiguous head of the lane list and
every trajectory stops at its turning point (no padding). sin/cos of psi at the nodes come from
delta without trigonometry (cos psi = 1 - delta, sin psi = sqrt(delta (2 - delta))); arcsin,
the sin/cos of the Gauss-node angles and exp are branch-free polynomials (truncation < 1e-9
relative; exp flushes to 0 below e^-700), so the lane loops compile to SIMD code (AVX2 has no
packed float64 <-> int64 conversion: exp keeps its exponent in floats and bit patterns; the rare
z > 1/2 branch of arcsin is redone outside the loop). Same model,
same nodes and same quadrature as the previous numpy implementation (agreement ~1e-13). Each
template is computed on its own (same operations in the same order whatever the batch), so its
results do not depend on batching or on the order of E_p.

Direction average for an isotropic intensity hitting the surface:
<Gamma> = (1/pi) int dphi int mu dmu Gamma = (1/pi) int dn_B int dtheta_B mu Gamma with polar
axis along B (n_B = cos of the angle to B, n_x0 = -a cos(theta_B), mu = a sin(theta_B)); this
integrand is smooth on the hemisphere. The sign s is absorbed in n_x0 (n_x0 -> -n_x0 maps s to
-s), so the average over s = +-1 is part of the theta_B integral. Gauss-Legendre nodes in
n_B = sin(alpha), alpha in [0, pi/2] (Gamma is even in n_B; the substitution removes the
sqrt(1 - n_B^2) edge) and theta_B in [0, pi].
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir as llvm_ir
from numba.core import types as nb_types
from numba.extending import intrinsic
from numpy.typing import ArrayLike

from catalogs.jit import jit_options

__all__ = [
    "EV_PER_GAUSS_CM",
    "rigidity_column",
    "field_profile",
    "slab_nodes",
    "thin_nodes",
    "direction_grid",
    "trajectory_efficiencies",
    "turning_column",
    "mirror_efficiency",
]

#: E[eV] / Phi_p[G cm] for a singly charged particle: c/(1e8 ... ) = 299.79 (e c B r = E).
EV_PER_GAUSS_CM: float = 299.792458

_JIT = jit_options(__file__)
_INLINE = dict(_JIT, inline="always")

#: exp below this is flushed to 0 (e^-700 = 1e-304; avoids subnormal arithmetic).
_EXP_MIN = -700.0
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # Cody-Waite split of ln 2
_LN2_LO = 1.9082149292705877e-10
_ROUND = 6755399441055744.0  # 1.5 * 2^52
_ROUND_BITS = 0x4338000000000000  # its bit pattern
#: X_half / lambda_pp beyond which every outward-leg term is below e^_EXP_MIN, i.e. exactly 0
#: (one unit of margin for the rounding of X_c = X_tot - X_in): the largest useful dark column.
_DARK = -_EXP_MIN + 1.0


def rigidity_column(E_p: ArrayLike) -> np.ndarray:
    """Rigidity Phi_p = E_p[eV] / 299.79 (G cm) of protons of total energy E_p (TeV)."""
    return np.asarray(E_p, dtype=float) * 1e12 / EV_PER_GAUSS_CM


def field_profile(rho: ArrayLike, v_conv: ArrayLike, f_B: ArrayLike) -> np.ndarray:
    """Equipartition field B = sqrt(4 pi f_B rho) v_conv (G), paper Eq. 6.

    rho (n_m, n_r) g cm^-3, v_conv (n_m, n_r) cm s^-1, f_B (n_m,) -> (n_m, n_r) G.
    """
    rho = np.asarray(rho, dtype=float)
    fb = np.asarray(f_B, dtype=float).reshape(-1, *([1] * (rho.ndim - 1)))
    return np.sqrt(4.0 * np.pi * fb * np.clip(rho, 0.0, None)) * np.asarray(v_conv, dtype=float)


def slab_nodes(
    radius: ArrayLike,
    rho: ArrayLike,
    v_conv: ArrayLike,
    column: ArrayLike,
    R_star: ArrayLike,
    f_B: ArrayLike,
    include_atmosphere: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Nodal vertical column Y_k (g cm^-2) and magnetic column Phi_k (G cm), surface -> centre.

    Returns two arrays of shape (n_m, n_r + 1): node 0 is the top of the atmosphere (Y = 0),
    node 1 the photosphere (Y = column[:, -1] if ``include_atmosphere`` else 0, Phi = 0), then
    the radius-grid nodes inward.
    """
    x = np.asarray(radius, dtype=float)[::-1]
    rho = np.atleast_2d(np.asarray(rho, dtype=float))[:, ::-1]
    B = field_profile(rho, np.atleast_2d(np.asarray(v_conv, dtype=float))[:, ::-1], f_B)
    R = np.asarray(R_star, dtype=float)[:, None]
    dh = R * (x[:-1] - x[1:])[None, :]  # (n_m, n_r - 1), depth steps in cm
    y_surf = np.asarray(column, dtype=float)[:, -1] if include_atmosphere else np.zeros(len(R))
    n_m = rho.shape[0]
    Y = np.zeros((n_m, x.size + 1))
    P = np.zeros_like(Y)
    Y[:, 1] = y_surf
    Y[:, 2:] = y_surf[:, None] + np.cumsum(0.5 * (rho[:, 1:] + rho[:, :-1]) * dh, axis=1)
    P[:, 2:] = np.cumsum(0.5 * (B[:, 1:] + B[:, :-1]) * dh, axis=1)
    return Y, P


def direction_grid(
    n_mu_b: int, n_gamma: int, u_max: float, u_min: float | None = None, alpha_rule: str = "half"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Direction quadrature for the isotropic-flux average.

    <G> = (2/pi) int_0^{pi/2} dalpha cos^2(alpha) int_{-1}^{1} dgamma G(a = cos alpha, gamma)
    (n_B = sin alpha; gamma = s n_x0 / a = -cos(theta_B)). Gauss-Legendre in alpha; in gamma the
    tanh rule gamma = tanh(u), dgamma = sech^2(u) du, trapezoid in u on [-u_max, u_max]: it
    resolves the grazing boundary layer 1 - gamma ~ Phi(Y ~ lambda)/(a Phi_p) in which the
    high-energy gamma-ray yield sits (it shrinks as 1/E_p), and converges exponentially for
    smooth G. Neglected tails carry weight ~ 4 exp(-2 u_max) (6e-8 for u_max = 9); the weights
    are normalised to sum to 1.

    ``u_min`` (default ``-u_max``) sets the lower end on its own: the gamma -> -1 side (protons
    deflected away from the surface, turning deep, G smooth and ~constant there) needs no
    resolution beyond u ~ -5, while the gamma-ray yield sits in the grazing layer at u > 0; an
    asymmetric range [-5, 6] puts the nodes where G varies (benchmarks/convergence_yields.py:
    6 x 24 nodes on [-5, 6] match 6 x 48 on [-9, 9] in accuracy, < 1e-3 in the stored
    luminosities of real main-sequence templates).

    Returns
    -------
    a, gamma, weight : np.ndarray, shape (n_mu_b * n_gamma,)
        a = sqrt(1 - n_B^2), gamma in (-1, 1), weights summing to 1 (they include mu/pi).
    """
    if alpha_rule == "half":
        xb, wb = np.polynomial.legendre.leggauss(n_mu_b)
        al, wb = 0.25 * np.pi * (xb + 1.0), 0.25 * np.pi * wb
    elif alpha_rule == "even":
        xb, wb = np.polynomial.legendre.leggauss(2 * n_mu_b)
        al, wb = 0.5 * np.pi * xb[n_mu_b:], 0.5 * np.pi * wb[n_mu_b:]
    else:
        raise ValueError("alpha_rule must be 'half' or 'even'")
    a = np.cos(al)
    u = np.linspace(-u_max if u_min is None else u_min, u_max, n_gamma)
    wg = np.full(n_gamma, u[1] - u[0])
    wg[[0, -1]] *= 0.5
    wg = wg / np.cosh(u) ** 2
    gam = np.tanh(u)
    W = np.outer(wb * a * a, wg)
    W /= W.sum()
    A, G = np.meshgrid(a, gam, indexing="ij")
    return A.ravel(), G.ravel(), W.ravel()




# --- compiled kernel -------------------------------------------------------------------------
# Branch-free polynomials (Horner, Taylor coefficients) so that the lane loops vectorise.


@nb.njit(**_INLINE)
def _p_asinc(x: float) -> float:
    """asin(z)/z as a series in x = z^2; truncation < 5e-12 relative for x <= 1/4."""
    x2 = x * x
    x4 = x2 * x2
    x8 = x4 * x4
    return ((((1.0 + 0.16666666666666666 * x) + (0.075 + 0.044642857142857144 * x) * x2) + ((0.030381944444444444 + 0.022372159090909092 * x) + (0.017352764423076924 + 0.01396484375 * x) * x2) * x4) + (((0.011551800896139705 + 0.009761609529194078 * x) + (0.008390335809616815 + 0.0073125258735988454 * x) * x2) + ((0.006447210311889649 + 0.005740037670841924 * x) + 0.005153309682319905 * x2) * x4) * x8)  # Estrin: short dependency chains


@nb.njit(**_INLINE)
def _p_sinc(x: float) -> float:
    """sin(h)/h in x = h^2; truncation < 7e-10 for h <= pi/2 (far less for the usual small h)."""
    x2 = x * x
    x4 = x2 * x2
    return (((1.0 + -0.16666666666666666 * x) + (0.008333333333333333 + -0.0001984126984126984 * x) * x2) + ((2.7557319223985893e-06 + -2.505210838544172e-08 * x) + (1.6059043836821613e-10 + -7.647163731819816e-13 * x) * x2) * x4)  # Estrin: short dependency chains


@nb.njit(**_INLINE)
def _p_cos(x: float) -> float:
    """cos(h) in x = h^2; truncation < 7e-11 for h <= pi/2."""
    x2 = x * x
    x4 = x2 * x2
    x8 = x4 * x4
    return ((((1.0 + -0.5 * x) + (0.041666666666666664 + -0.001388888888888889 * x) * x2) + ((2.48015873015873e-05 + -2.755731922398589e-07 * x) + (2.08767569878681e-09 + -1.1470745597729725e-11 * x) * x2) * x4) + 4.779477332387385e-14 * x8)  # Estrin: short dependency chains


@nb.njit(**_INLINE)
def _p_exp(x: float) -> float:
    """exp(x) for |x| <= ln(2)/2; truncation < 1e-14."""
    x2 = x * x
    x4 = x2 * x2
    x8 = x4 * x4
    return ((((1.0 + 1.0 * x) + (0.5 + 0.16666666666666666 * x) * x2) + ((0.041666666666666664 + 0.008333333333333333 * x) + (0.001388888888888889 + 0.0001984126984126984 * x) * x2) * x4) + ((2.48015873015873e-05 + 2.7557319223985893e-06 * x) + (2.755731922398589e-07 + 2.505210838544172e-08 * x) * x2) * x8)  # Estrin: short dependency chains


@intrinsic
def _f64_from_bits(typingctx, bits):  # noqa: ANN001, ARG001
    """Reinterpret an int64 bit pattern as float64 (builds 2^n for exp)."""

    def codegen(context, builder, signature, args):  # noqa: ANN001, ARG001
        return builder.bitcast(args[0], llvm_ir.DoubleType())

    return nb_types.float64(nb_types.int64), codegen


@intrinsic
def _bits_from_f64(typingctx, x):  # noqa: ANN001, ARG001
    """The int64 bit pattern of a float64."""

    def codegen(context, builder, signature, args):  # noqa: ANN001, ARG001
        return builder.bitcast(args[0], llvm_ir.IntType(64))

    return nb_types.int64(nb_types.float64), codegen


@nb.njit(**_INLINE)
def _exp_neg(x: float) -> float:
    """exp(x) for x <= 0 (2^n p(r) with Cody-Waite reduction); 0 below _EXP_MIN and for NaN."""
    xc = x if x > _EXP_MIN else _EXP_MIN
    # n stays a float (np.floor; math.floor returns an int): AVX2 has no packed float64 <-> int64
    # conversion, so either conversion would split the lane loops' vectors into scalars
    n = np.floor(xc * _LOG2E + 0.5)
    r = (xc - n * _LN2_HI) - n * _LN2_LO
    # the integer n from the mantissa of n + 1.5 2^52 (exact: |n| < 2^51, unit spacing there)
    scale = _f64_from_bits((_bits_from_f64(n + _ROUND) - _ROUND_BITS + 1023) << 52)
    return _p_exp(r) * scale if x > _EXP_MIN else 0.0


@nb.njit(**_INLINE)
def _asinc_high(z: float) -> float:
    """arcsin(z)/z on (1/2, 1] from asin z = pi/2 - 2 asin(sqrt((1 - z)/2))."""
    w2 = 0.5 * (1.0 - z)
    return (0.5 * math.pi - 2.0 * math.sqrt(w2) * _p_asinc(w2)) / z


@nb.njit(**_INLINE)
def _outward_segment(l0, l1, gt, gw, SH, CH, a, inv_pair, Yj, Sj, Sn, DPj, DYUj, XSj, XI, x_tot, lam_pp, W0, W1, W2, W3, ACC):  # noqa: E501, ANN001
    """Add the Gauss-Legendre sum (nodes gt, weights gw on (0, 1)) of the outward-leg gamma-ray
    integrand over the current segment to ACC[l0:l1] (x_tot: 2 X_half per lane)."""
    ng = gt.size
    _node_tables(gt, DPj, SH, CH, l0, l1)
    for k in range(ng):
        # Gauss-Legendre nodes are symmetric: 1 - t_k = t_(ng - 1 - k)
        kp = ng - 1 - k
        tk = gt[k]
        wk = gw[k]
        SHk, CHk, SHp, CHp = SH[k], CH[k], SH[kp], CH[kp]
        for l in range(l0, l1):
            ACC[l] += wk * _outward_term(
                SHk[l], CHk[l], SHp[l], CHp[l], W0[l], W1[l], W2[l], W3[l], Sj[l], Sn[l],
                tk, Yj, DYUj[l], x_tot[l], XI[l], XSj[l], lam_pp[l], a, inv_pair,
            )


@nb.njit(**_INLINE)
def _node_tables(gt, DPj, SH, CH, l0, l1):  # noqa: ANN001, ANN202
    """sin and cos of half the Gauss-node angle steps (t_k dpsi)/2 for lanes [l0, l1)."""
    for k in range(gt.size):
        tk = 0.5 * gt[k]
        SHk, CHk = SH[k], CH[k]
        for l in range(l0, l1):
            h = tk * DPj[l]  # (t_k dpsi)/2
            h2 = h * h
            SHk[l] = h * _p_sinc(h2)
            CHk[l] = _p_cos(h2)


@nb.njit(**_INLINE)
def _outward_term(sh, ch, shp, chp, dy, idy, yt, yb, st, sb, tk, Yj, dyu, x_tot, xi, xs, lp, a, inv_pair):  # noqa: E501, ANN001, ANN202
    """Outward-leg gamma-ray integrand at one Gauss node of one segment (one lane)."""
    # psi = psi_b + t dpsi = psi_t - (1 - t) dpsi: sin psi from the end where both
    # terms are positive (no cancellation)
    sth, cth = 2.0 * sh * ch, ch * ch - sh * sh
    sthp, cthp = 2.0 * shp * chp, chp * chp - shp * shp
    spsi = (sb * cth + yb * sth) if yb >= 0.0 else (st * cthp - yt * sthp)
    # cos psi - cos psi_t = 2 sin((psi_t + psi)/2) sin((1 - t) dpsi / 2)
    num = 2.0 * (st * chp - yt * shp) * shp
    frac = min(num * idy, 1.0) if dy > 0.0 else 1.0 - tk
    ycol = Yj + dyu * frac
    nz = a * spsi
    x_c = x_tot - (xi + (1.0 - tk) * xs)
    # -X_c/lambda_pp - Y/(n_z lambda_pair), one division; inv_pair = 1/lambda_pair, so that
    # lambda_pair = inf (no pair absorption) is the exact unabsorbed limit, not inf/inf
    e = _exp_neg(-(x_c * nz + ycol * lp * inv_pair) / (lp * nz))
    return e if nz > 0.0 else 0.0


@nb.njit(**_JIT)
def _lanes(Y, P, n_seg, a, gam, phi_p, lam_pp, inv_pair, mirrored, dark, gt, gw, gt2, gw2, D, S, XS, DP, DYU, XI, SH, CH, W, ACC, out_g, out_n):  # noqa: E501, ANN001
    """Gamma_gamma, Gamma_nu of L trajectories ("lanes") sharing one template and one a = sqrt(1 - n_B^2).

    Y, P : nodal columns of the template. n_seg[l] : segments lane l needs (down to its turning
    segment, or all of them), non-increasing in l, so the lanes that need segment j are a head
    l < hi_j of the list (lane loops start at 0, which keeps them vectorisable). gam, phi_p,
    lam_pp, mirrored : per lane. D, S (n_nodes, L) and XS, DP, DYU (n_nodes - 1, L) are work
    arrays (delta and sin psi per node; X, dpsi, used column per segment); XI, ACC (L,),
    SH, CH (n_gauss, L), W (5, L). Results in out_g, out_n (L,).
    """
    L = gam.size
    ng = gt.size
    inv_a = 1.0 / a
    D0, S0, IPE = D[0], S[0], W[4]
    for l in range(L):
        IPE[l] = 1.0 / (a * phi_p[l])
        d = (1.0 - gam[l]) - P[0] * IPE[l]  # delta = (Phi_m - Phi)/Phi_eff
        D0[l] = d
        dc = min(max(d, 0.0), 2.0)
        S0[l] = math.sqrt(dc * (2.0 - dc))
        XI[l] = 0.0
    # pass 1: X of every segment above the turning point -> X_half, Gamma_nu.
    # Lanes [0, s) are settled: X_in > max(dark, 40) lambda_pp already. X_half only grows (every
    # X_segment >= 0), so their Gamma_nu is exactly 1 (expm1 of an argument below -40 is -1.0)
    # and they are dark or unmirrored, i.e. in the head that pass 2 skips: their deeper segments
    # change no result and are not computed (18% of this pass's lane-segments on paper-grid
    # main-sequence templates). The lane loops run on views that start at s (loops from 0
    # vectorise).
    settled = max(dark, 40.0)
    s = 0
    hi = L
    for j in range(n_seg[0] if L > 0 else 0):
        while n_seg[hi - 1] <= j:
            hi -= 1
        while s < hi and XI[s] > settled * lam_pp[s]:
            s += 1
        if s == hi:
            break
        m = hi - s
        dY = Y[j + 1] - Y[j]
        dPhi = P[j + 1] - P[j]
        inv_dphi = 1.0 / dPhi if dPhi > 0.0 else 0.0
        Pn = P[j + 1]
        Dj, Dn, Sj, Sn = D[j][s:], D[j + 1][s:], S[j][s:], S[j + 1][s:]
        XSj, DPj, DYUj = XS[j][s:], DP[j][s:], DYU[j][s:]
        gs, ps, ips, xis = gam[s:], phi_p[s:], IPE[s:], XI[s:]
        l_high = m
        for l in range(m):
            db0 = (1.0 - gs[l]) - Pn * ips[l]
            Dn[l] = db0
            db = min(max(db0, 0.0), 2.0)
            sb = math.sqrt(db * (2.0 - db))
            Sn[l] = sb
            dt0 = Dj[l]
            dt = min(max(dt0, 0.0), 2.0)
            st = Sj[l]
            dy = max(dt - db, 0.0)
            # sin((psi_t + psi_b)/2)^2 = (1 - cos psi_t cos psi_b + sin psi_t sin psi_b)/2, with
            # 1 - cos cos written without cancellation on either side of psi = pi/2
            et, eb = 2.0 - dt, 2.0 - db
            omc = (dt + db - dt * db) if (2.0 - dt - db) >= 0.0 else (et + eb - et * eb)
            sbar = math.sqrt(max(0.5 * (omc + st * sb), 0.0))
            inv_ss = 1.0 / sbar if sbar > 0.0 else 1.0
            z = min(0.5 * dy * inv_ss, 1.0)
            # dpsi/dy = asin(z)/z / sbar, exact for a segment. Here the series branch of
            # asin(z)/z (z <= 1/2); lanes with z > 1/2 (few, mostly those turning in this segment)
            # are redone below from l_high on: a sqrt and a division less in this loop
            ratio = _p_asinc(z * z) * inv_ss
            low = z <= 0.5
            l_high = min(l_high, m if low else l)
            used = min(dy * (a * ps[l]) * inv_dphi, 1.0) if dPhi > 0.0 else 1.0
            dyu = dY * used
            xs = dyu * ratio * inv_a if dt0 > 0.0 else 0.0
            XSj[l] = xs
            DPj[l] = ratio * dy
            DYUj[l] = dyu
            xis[l] += xs if low else 0.0  # X_in >= 0: adding 0.0 changes no bit
        for l in range(l_high, m):
            db = min(max(Dn[l], 0.0), 2.0)
            dt0 = Dj[l]
            dt = min(max(dt0, 0.0), 2.0)
            dy = max(dt - db, 0.0)
            et, eb = 2.0 - dt, 2.0 - db
            omc = (dt + db - dt * db) if (2.0 - dt - db) >= 0.0 else (et + eb - et * eb)
            sbar = math.sqrt(max(0.5 * (omc + Sj[l] * Sn[l]), 0.0))
            inv_ss = 1.0 / sbar if sbar > 0.0 else 1.0
            z = min(0.5 * dy * inv_ss, 1.0)
            if not (z <= 0.5):
                ratio = _asinc_high(z) * inv_ss
                xs = DYUj[l] * ratio * inv_a if dt0 > 0.0 else 0.0
                XSj[l] = xs
                DPj[l] = ratio * dy
                xis[l] += xs
    for l in range(L):
        xh = XI[l]
        out_n[l] = -math.expm1(-(2.0 * xh if mirrored[l] else xh) / lam_pp[l])
        out_g[l] = 2.0 * xh  # 2 X_half, kept in out_g until the end
        XI[l] = 0.0  # from here on: X_in at the top of the current segment
    # pass 2: outward-leg gamma rays of the mirrored lanes. Every term of a lane has
    # exp(-X_c/lambda_pp) with X_c >= X_half, so the integral of a lane with X_half > dark
    # lambda_pp is below e^-dark; for dark >= _DARK every term is an exact zero (_exp_neg flushes
    # below e^-700). X_half grows with E_p, so such lanes and the unmirrored ones (whose gamma
    # rays are dropped) lead the list: that head [0, lo) is set to 0, not integrated (9% of this
    # pass's lane-segments at _DARK, 44% at 40, on paper-grid main-sequence templates).
    # The lane loops run on views that start at lane lo (loops from 0 vectorise); SH, CH, W and
    # ACC are scratch within a segment and are indexed from 0 as they are.
    lo = 0
    while lo < L and (not mirrored[lo] or out_g[lo] > 2.0 * dark * lam_pp[lo]):
        lo += 1
    hi = L
    W0, W1, W2, W3 = W[0], W[1], W[2], W[3]
    XIo, XTo, LPo = XI[lo:], out_g[lo:], lam_pp[lo:]
    t0, t1, t2 = (gt[0], gt[1], gt[2]) if ng == 3 else (0.0, 0.0, 0.0)
    w0, w1, w2 = (gw[0], gw[1], gw[2]) if ng == 3 else (0.0, 0.0, 0.0)
    G = W[4][lo:]  # sum of the segments' gamma-ray terms per lane (IPE is no longer needed)
    for l in range(L - lo):
        G[l] = 0.0
    for j in range(n_seg[lo] if lo < L else 0):
        while n_seg[hi - 1] <= j:
            hi -= 1
        m = hi - lo
        Yj = Y[j]
        Dj, Dn, Sj, Sn = D[j][lo:], D[j + 1][lo:], S[j][lo:], S[j + 1][lo:]
        XSj, DPj, DYUj = XS[j][lo:], DP[j][lo:], DYU[j][lo:]
        if ng == 3 and gt2.size == ng:
            # the usual rule, in one pass over the lanes (no tables through memory); the same
            # operations in the same order as the general code below
            for l in range(m):
                dt = min(max(Dj[l], 0.0), 2.0)
                db = min(max(Dn[l], 0.0), 2.0)
                dy = max(dt - db, 0.0)
                idy, yt, yb = 1.0 / dy, 1.0 - dt, 1.0 - db
                dp = DPj[l]
                h = (0.5 * t0) * dp
                h2 = h * h
                sh0, ch0 = h * _p_sinc(h2), _p_cos(h2)
                h = (0.5 * t1) * dp
                h2 = h * h
                sh1, ch1 = h * _p_sinc(h2), _p_cos(h2)
                h = (0.5 * t2) * dp
                h2 = h * h
                sh2, ch2 = h * _p_sinc(h2), _p_cos(h2)
                st, sb, dyu, xt, xi, xs, lp = Sj[l], Sn[l], DYUj[l], XTo[l], XIo[l], XSj[l], LPo[l]
                acc = 0.0
                acc += w0 * _outward_term(sh0, ch0, sh2, ch2, dy, idy, yt, yb, st, sb, t0, Yj, dyu, xt, xi, xs, lp, a,
                                          inv_pair)
                acc += w1 * _outward_term(sh1, ch1, sh1, ch1, dy, idy, yt, yb, st, sb, t1, Yj, dyu, xt, xi, xs, lp, a,
                                          inv_pair)
                acc += w2 * _outward_term(sh2, ch2, sh0, ch0, dy, idy, yt, yb, st, sb, t2, Yj, dyu, xt, xi, xs, lp, a,
                                          inv_pair)
                G[l] += acc * xs  # the segment's gamma-ray term; segments in order, as before
                XIo[l] = xi + xs
            continue
        for l in range(m):
            dt = min(max(Dj[l], 0.0), 2.0)
            db = min(max(Dn[l], 0.0), 2.0)
            dy = max(dt - db, 0.0)
            W0[l] = dy
            W1[l] = 1.0 / dy
            W2[l] = 1.0 - dt
            W3[l] = 1.0 - db
            ACC[l] = 0.0
        _node_tables(gt, DPj, SH, CH, 0, m)
        for k in range(ng):
            # Gauss-Legendre nodes are symmetric: 1 - t_k = t_(ng - 1 - k)
            kp = ng - 1 - k
            tk = gt[k]
            wk = gw[k]
            SHk, CHk, SHp, CHp = SH[k], CH[k], SH[kp], CH[kp]
            for l in range(m):
                ACC[l] += wk * _outward_term(
                    SHk[l], CHk[l], SHp[l], CHp[l], W0[l], W1[l], W2[l], W3[l], Sj[l], Sn[l],
                    tk, Yj, DYUj[l], XTo[l], XIo[l], XSj[l], LPo[l], a, inv_pair,
                )
        if gt2.size != ng:
            # lanes [hn, hi) turn in this segment (n_seg non-increasing): their sum is redone with
            # the turning-segment rule (the integrand vanishes like exp(-c/psi) at psi = 0)
            hn = hi
            while hn > lo and n_seg[hn - 1] <= j + 1:
                hn -= 1
            for l in range(hn - lo, m):
                ACC[l] = 0.0
            _outward_segment(hn - lo, m, gt2, gw2, SH, CH, a, inv_pair, Yj, Sj, Sn, DPj, DYUj, XSj, XIo, XTo, LPo,
                             W0, W1, W2, W3, ACC)
        for l in range(m):
            xs = XSj[l]
            G[l] += ACC[l] * xs
            XIo[l] += xs
    for l in range(lo):
        out_g[l] = 0.0
    for l in range(lo, L):
        out_g[l] = G[l - lo] / lam_pp[l] if mirrored[l] else 0.0


@nb.njit(**_JIT)
def _work(n_nodes, n_lanes, n_gauss):  # noqa: ANN001, ANN202
    """Work arrays of :func:`_lanes`."""
    D = np.zeros((n_nodes, n_lanes))
    S = np.zeros((n_nodes, n_lanes))
    XS = np.zeros((n_nodes, n_lanes))
    DP = np.zeros((n_nodes, n_lanes))
    DYU = np.zeros((n_nodes, n_lanes))
    SH = np.zeros((n_gauss, n_lanes))
    CH = np.zeros((n_gauss, n_lanes))
    W = np.zeros((5, n_lanes))
    return D, S, XS, DP, DYU, np.zeros(n_lanes), SH, CH, W, np.zeros(n_lanes)


@nb.njit(**_JIT)
def _trajectories(Y, P, a, gam, phi_p, lam_pp, inv_pair, gt, gw, gt2, gw2, out_g, out_n):  # noqa: ANN001, ANN202
    """One trajectory per row of Y, P (n_t, K + 1) and per parameter entry (n_t,)."""
    n_t, n_nodes = Y.shape
    D, S, XS, DP, DYU, XI, SH, CH, W, ACC = _work(n_nodes, 1, max(gt.size, gt2.size))
    n_seg = np.zeros(1, dtype=np.int64)
    mir = np.zeros(1, dtype=np.bool_)
    og = np.zeros(1)
    on = np.zeros(1)
    for t in range(n_t):
        phi_m = a[t] * phi_p[t] * (1.0 - gam[t])
        mir[0] = phi_m < P[t, n_nodes - 1]
        k = np.searchsorted(P[t], phi_m, side="right")
        n_seg[0] = min(k, n_nodes - 1) if mir[0] else n_nodes - 1
        _lanes(Y[t], P[t], n_seg, a[t], gam[t : t + 1], phi_p[t : t + 1], lam_pp[t : t + 1], inv_pair[t], mir, _DARK,
               gt, gw, gt2, gw2, D, S, XS, DP, DYU, XI, SH, CH, W, ACC, og, on)
        out_g[t] = og[0]
        out_n[t] = on[0]


@nb.njit(**_JIT)
def _mirror_templates(Y, P, keep, a, gam, wd, phi_p, lam_pp, inv_pair, saturation, dark, gt, gw, gt2, gw2, G_g, G_n):  # noqa: E501, ANN001, ANN202
    """Direction-averaged efficiencies of every template (rows of Y, P; phi_p ascending), added to
    G_g, G_n (n_m, n_p) in a fixed order (direction by direction)."""
    n_m, n_nodes = Y.shape
    n_p = phi_p.size
    D, S, XS, DP, DYU, XI, SH, CH, W, ACC = _work(n_nodes, n_p, max(gt.size, gt2.size))
    Yt = np.zeros(n_nodes)
    Pt = np.zeros(n_nodes)
    lane_p = np.zeros(n_p, dtype=np.int64)
    n_seg = np.zeros(n_p, dtype=np.int64)
    mir = np.zeros(n_p, dtype=np.bool_)
    g_l, php_l, lp_l = np.zeros(n_p), np.zeros(n_p), np.zeros(n_p)
    og, on = np.zeros(n_p), np.zeros(n_p)
    for i in range(n_m):
        nk = 0
        for j in range(n_nodes):
            if keep[i, j]:
                Yt[nk] = Y[i, j]
                Pt[nk] = P[i, j]
                nk += 1
        # Phi ascending (always, for real profiles): the turning nodes move by pointers, since
        # Phi_m falls with E_p within a direction (the same indices as searchsorted's)
        ascending = True
        for j in range(1, n_nodes):
            ascending &= P[i, j] >= P[i, j - 1]
        for d in range(a.size):
            c = a[d] * (1.0 - gam[d])
            L = 0
            k = np.searchsorted(P[i], c * phi_p[n_p - 1], side="right")
            kt = np.searchsorted(Pt[:nk], c * phi_p[n_p - 1], side="right")
            for p in range(n_p - 1, -1, -1):  # E_p descending: n_seg non-increasing along the lanes
                phi_m = c * phi_p[p]
                if ascending:
                    while k > 0 and P[i, k - 1] > phi_m:
                        k -= 1
                    while kt > 0 and Pt[kt - 1] > phi_m:
                        kt -= 1
                else:
                    k = np.searchsorted(P[i], phi_m, side="right")
                    kt = np.searchsorted(Pt[:nk], phi_m, side="right")
                mirrored = k < n_nodes
                # saturation test on the unthinned nodes: column at the top of the turning segment
                y_turn = Y[i, k - 1] if mirrored else Y[i, n_nodes - 1]
                if y_turn >= saturation * lam_pp[p]:
                    G_n[i, p] += wd[d]
                    continue
                lane_p[L] = p
                n_seg[L] = min(kt, nk - 1) if mirrored else nk - 1
                mir[L] = mirrored
                g_l[L] = gam[d]
                php_l[L] = phi_p[p]
                lp_l[L] = lam_pp[p]
                L += 1
            if L == 0:
                continue
            _lanes(Yt, Pt, n_seg[:L], a[d], g_l[:L], php_l[:L], lp_l[:L], inv_pair[i], mir[:L], dark, gt, gw, gt2, gw2,
                   D, S, XS, DP, DYU, XI, SH, CH, W, ACC, og, on)
            for l in range(L):
                G_g[i, lane_p[l]] += wd[d] * og[l]
                G_n[i, lane_p[l]] += wd[d] * on[l]


def _gauss_nodes(n_gauss: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on (0, 1)."""
    gx, gw = np.polynomial.legendre.leggauss(n_gauss)
    return 0.5 * (gx + 1.0), 0.5 * gw


def _inverse(lam_pair: ArrayLike) -> np.ndarray:
    """1/lambda_pair [cm^2 g^-1]; lambda_pair = inf (no pair absorption) gives exactly 0."""
    lam = np.asarray(lam_pair, dtype=float)
    if np.any(~(lam > 0)):
        raise ValueError("lambda_pair must be positive (inf: no pair absorption)")
    return 1.0 / lam


def trajectory_efficiencies(
    Y: np.ndarray,
    Phi: np.ndarray,
    a: ArrayLike,
    gamma: ArrayLike,
    Phi_p: ArrayLike,
    lam_pp: ArrayLike,
    lam_pair: ArrayLike,
    *,
    n_gauss: int,
    n_gauss_turn: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gamma_gamma and Gamma_nu of single trajectories (broadcast over leading axes).

    Parameters
    ----------
    Y, Phi : np.ndarray, shape (..., K + 1)
        Nodal vertical column (g cm^-2, from 0) and magnetic column (G cm), see
        :func:`slab_nodes`; leading axes broadcast with the trajectory parameters.
    a : array_like
        sqrt(1 - n_B^2).
    gamma : array_like
        s n_x0 / a in (-1, 1).
    Phi_p : array_like
        Rigidity (G cm).
    lam_pp, lam_pair : array_like
        Interaction and pair lengths (g cm^-2).
    n_gauss : int
        Gauss-Legendre nodes per segment for the outward-leg gamma-ray integral.
    n_gauss_turn : int or None
        Nodes in the turning segment (None: ``n_gauss``).

    Returns
    -------
    (Gamma_gamma, Gamma_nu) : np.ndarray, broadcast shape of the parameters and Y[..., 0].
    """
    Y = np.asarray(Y, dtype=float)
    Phi = np.asarray(Phi, dtype=float)
    pars = [np.asarray(v, dtype=float) for v in (a, gamma, Phi_p, lam_pp, _inverse(lam_pair))]
    shape = np.broadcast_shapes(Y.shape[:-1], Phi.shape[:-1], *(v.shape for v in pars))
    n_nodes = Y.shape[-1]
    Yb = np.ascontiguousarray(np.broadcast_to(Y, shape + (n_nodes,)).reshape(-1, n_nodes))
    Pb = np.ascontiguousarray(np.broadcast_to(Phi, shape + (n_nodes,)).reshape(-1, n_nodes))
    flat = [np.ascontiguousarray(np.broadcast_to(v, shape).ravel()) for v in pars]
    out_g, out_n = np.zeros(Yb.shape[0]), np.zeros(Yb.shape[0])
    _trajectories(Yb, Pb, *flat, *_gauss_nodes(n_gauss), *_gauss_nodes(n_gauss_turn or n_gauss), out_g, out_n)
    return out_g.reshape(shape), out_n.reshape(shape)


def _thin_keep(
    Y: np.ndarray, Phi: np.ndarray, tol: float, y_scale: float = 1e-6, phi_tol: float | None = None,
    phi_scale: float = 1.0,
) -> np.ndarray:
    """Mask of the nodes :func:`thin_nodes` keeps (row by row; all True for ``tol <= 0``)."""
    keep = np.ones(Y.shape, dtype=bool)
    if tol <= 0:
        return keep
    cy = np.floor(np.log(Y + y_scale) / tol)
    same = (cy[:, 1:-1] == cy[:, :-2]) & (cy[:, 1:-1] == cy[:, 2:])
    if phi_tol is not None:
        cp = np.floor(np.log(Phi + phi_scale) / phi_tol)
        same &= (cp[:, 1:-1] == cp[:, :-2]) & (cp[:, 1:-1] == cp[:, 2:])
    keep[:, 1:-1] = ~same
    return keep


def thin_nodes(
    Y: np.ndarray,
    Phi: np.ndarray,
    tol: float,
    y_scale: float = 1e-6,
    phi_tol: float | None = None,
    phi_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Drop slab nodes that stay in the same cell of width ``tol`` in ln(Y + y_scale) (and, if
    ``phi_tol`` is given, of width ``phi_tol`` in ln(Phi + phi_scale)) as both neighbours.

    Vectorised over templates; rows are padded by repeating the last node (zero-length
    segments). ``tol = 0`` keeps every node. The kept nodes keep their exact (Y, Phi); between
    them Phi is again linear in Y. Rationale: the shared radius grid puts ~1/3 of its nodes in
    the top ~1e-3 of the column (depth < 1e-5 R), where a proton only collects a negligible
    part of its path column, so merging nodes by relative column step costs little accuracy
    (tol = 0.03: L_mirror changes by < 1e-3 on perturbed solar templates, ~4x faster).
    """
    if tol <= 0:
        return Y, Phi
    keep = _thin_keep(Y, Phi, tol, y_scale, phi_tol, phi_scale)
    n_keep = keep.sum(axis=1)
    order = np.argsort(~keep, axis=1, kind="stable")[:, : n_keep.max()]
    pos = np.arange(order.shape[1])[None, :]
    last = order[np.arange(len(Y)), n_keep - 1][:, None]
    order = np.where(pos < n_keep[:, None], order, last)
    return np.take_along_axis(Y, order, 1), np.take_along_axis(Phi, order, 1)


def turning_column(
    Y: np.ndarray, Phi: np.ndarray, a: ArrayLike, gamma: ArrayLike, Phi_p: ArrayLike
) -> np.ndarray:
    """Vertical column Y_m (g cm^-2) at the turning point Phi(h_m) = Phi_p (a - s n_x0).

    One template (Y, Phi of shape (K + 1,), :func:`slab_nodes`), any number of trajectories
    (a = sqrt(1 - n_B^2), gamma = s n_x0 / a, Phi_p in G cm, broadcast). Phi is linear in Y
    between nodes (the kernel's model); ``inf`` where the field column runs out (unmirrored).
    """
    phi_m = np.asarray(a, dtype=float) * (1.0 - np.asarray(gamma, dtype=float)) * np.asarray(Phi_p, dtype=float)
    k = np.searchsorted(Phi, phi_m, side="right")  # first node with Phi > Phi_m
    ok = k < Phi.size
    kk = np.clip(k, 1, Phi.size - 1)
    p0, p1, y0, y1 = Phi[kk - 1], Phi[kk], Y[kk - 1], Y[kk]
    ym = y0 + (phi_m - p0) * (y1 - y0) / np.where(p1 > p0, p1 - p0, 1.0)
    return np.where(ok, ym, np.inf)


def mirror_efficiency(
    radius: ArrayLike,
    rho: ArrayLike,
    v_conv: ArrayLike,
    column: ArrayLike,
    R_star: ArrayLike,
    f_B: ArrayLike,
    E_p: ArrayLike,
    lam_pp: ArrayLike,
    lam_pair: ArrayLike,
    *,
    n_mu_b: int,
    n_gamma: int,
    n_gauss: int,
    saturation: float,
    node_tol: float,
    dark_column: float,
    u_max: float,
    u_min: float | None,
    include_atmosphere: bool = True,
    alpha_rule: str = "half",
    n_gauss_turn: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Direction-averaged mirroring efficiencies <Gamma_gamma>, <Gamma_nu> for all templates.

    Parameters
    ----------
    radius : array_like, shape (n_r,)
        Shared radius grid r/R (ascending, 0 ... 1).
    rho, v_conv, column : array_like, shape (n_m, n_r)
        Density (g cm^-3), convective velocity (cm s^-1), vertical column from the surface
        including P_surf/g (g cm^-2; only the photospheric value column[:, -1] is used).
    R_star : array_like, shape (n_m,)
        Radius (cm).
    f_B : array_like, shape (n_m,)
        Magnetic-to-kinetic energy-density fraction (0 -> no field, every proton unmirrored).
    E_p : array_like, shape (n_p,)
        Proton total energies (TeV), any order.
    lam_pp : array_like, shape (n_p,)
        lambda_pp(E_p) (g cm^-2).
    lam_pair : float or array_like, shape (n_m,)
        Pair-production length (g cm^-2); ``inf`` switches pair absorption off exactly.
    n_mu_b, n_gamma : int
        Direction nodes (:func:`direction_grid`).
    n_gauss : int
        Nodes per segment for the outward-leg integral.
    n_gauss_turn : int or None
        Nodes in each trajectory's turning segment (None: ``n_gauss``), where the integrand
        vanishes like exp(-c/psi) and converges slowest.
    saturation : float
        A trajectory whose turning point (or, if unmirrored, the bottom of the profile) lies
        below the vertical column ``saturation * lambda_pp`` is set to Gamma_nu = 1,
        Gamma_gamma = 0 without integration: errors <= exp(-2 saturation) and
        exp(-saturation) (absolute), since X_half >= Y_m and Gamma_gamma <= exp(-X_half/lambda_pp).
    include_atmosphere : bool
        Add the field-free layer above the photosphere (column[:, -1]).
    node_tol : float
        Node thinning (:func:`thin_nodes`): cell width in ln Y; 0 = exact model.
    dark_column : float
        A mirrored trajectory whose half-path column X_half exceeds ``dark_column * lambda_pp``
        gets Gamma_gamma = 0 without the outward-leg integral, which is below
        exp(-dark_column) (absolute; X_c >= X_half on that leg). Values above 701 (``inf``)
        change no bit: every term there is an exact zero.
    u_max, u_min : float
        Range of the tanh rule in the direction grid (:func:`direction_grid`; u_min None = -u_max).

    Returns
    -------
    (G_gamma, G_nu) : np.ndarray, shape (n_m, n_p)
        Efficiencies <Gamma> in [0, 1]. Each template's row is computed on its own and does not
        depend on the other templates of the batch (bit for bit).
    """
    rho = np.atleast_2d(np.asarray(rho, dtype=float))
    n_m = rho.shape[0]
    E_p = np.asarray(E_p, dtype=float)
    lam_pp = np.broadcast_to(np.asarray(lam_pp, dtype=float), E_p.shape)
    inv_pair = np.ascontiguousarray(np.broadcast_to(_inverse(lam_pair), (n_m,)))
    Y, Phi = slab_nodes(radius, rho, v_conv, column, R_star, f_B, include_atmosphere)
    keep = _thin_keep(Y, Phi, node_tol)
    a, gam, wd = direction_grid(n_mu_b, n_gamma, u_max, u_min, alpha_rule)
    # ascending E_p: turning points deepen with E_p (see the module notes)
    order = np.argsort(E_p, kind="stable")
    g_g = np.zeros((n_m, E_p.size))
    g_n = np.zeros((n_m, E_p.size))
    _mirror_templates(Y, Phi, keep, a, gam, wd, rigidity_column(E_p[order]), np.ascontiguousarray(lam_pp[order]),
                      inv_pair, float(saturation), min(float(dark_column), _DARK), *_gauss_nodes(n_gauss),
                      *_gauss_nodes(n_gauss_turn or n_gauss), g_g, g_n)
    out_g, out_n = np.empty_like(g_g), np.empty_like(g_n)
    out_g[:, order], out_n[:, order] = g_g, g_n
    return out_g, out_n
