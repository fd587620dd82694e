"""Compiled integration of the near-surface structure model (:mod:`catalogs.stellar.envelope`).

The grey atmosphere (RK4 in ln tau) and the envelope (RK4 in ln P) of a batch of stars, with
the EOS (:mod:`catalogs.stellar.eos`, ``eos_from_P_T``), the opacity lookup
(:mod:`catalogs.stellar.opacity`) and MLT (:mod:`catalogs.stellar.mlt`) inlined.  The numpy
code it replaced evaluated every right-hand side for all active stars at once, at ~2 ms per
evaluation of python and small-array overhead (2.3 s for 256 paper models); here it is one
compiled pass.

Every floating-point operation is the one, in the same order, of the numpy implementation
(kept in ``tests/catalogs/stellar/envelope_numpy_oracle.py``), so the profiles are the same
to the last bit.  That includes what made the numpy results depend on the batch: its two
Newton iterations (Saha electron balance, MLT cubic) ran on all stars of an evaluation until
the *last* of them converged, and a star that has converged can still move by an ulp on the
next iteration.  The kernels keep those lockstep iteration counts; a star is only skipped
once an iteration leaves its iterate bitwise unchanged, since every later one would then
repeat it exactly (the recorded convergence test is reused for it).  No fastmath and no
parallel loops; ``exp``, ``log``, ``log10`` and ``pow`` are the C library's, as numpy's
are on x86-64 without AVX-512 (checked by ``tests/catalogs/stellar/test_envelope_kernel.py``).

Units: cgs (M in g, L in erg s^-1), as in the module that calls it.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from astropy import constants as _c

from catalogs.jit import jit_options

from .eos import _PHI0, A_RAD, CHI_DONOR, CHI_H, CHI_HE1, CHI_HE2, K_B
from .mlt import C_LIGHT

__all__ = ["atmosphere", "integrate_envelope", "G_GRAV", "SIGMA_SB"]

G_GRAV = _c.G.cgs.value
SIGMA_SB = _c.sigma_sb.cgs.value

_JIT = jit_options(__file__)
_INLINE = dict(_JIT, inline="always")

# The numpy code divided by np.log(10.0); the same double, computed once.
_LN10 = float(np.log(10.0))
_PI = math.pi
_TWO_THIRDS = 2.0 / 3.0


@nb.njit(**_JIT)
def _np_maximum0(v):
    """``numpy.maximum(v, 0.0)`` for one double (NaN propagates)."""
    return v if (v >= 0.0 or v != v) else 0.0


@nb.njit(**_INLINE)
def _saha(ne, KH, KD, K1, K2, nuH, nuHe, nuD):  # noqa: ANN001, ANN202
    """Ionised fractions of H (x) and the donor (xd), the He ratios f1, f2 and D = 1 + f1 + f2, and
    the free electrons per unit mass E at electron density ``ne``: what the Newton solve and the
    final state both evaluate (one set of operations, so both keep the numpy EOS's bits)."""
    x = KH / (KH + ne)
    xd = KD / (KD + ne)
    f1 = K1 / ne
    f2 = f1 * (K2 / ne)
    D = 1.0 + f1 + f2
    y1 = f1 / D
    y2 = f2 / D
    return x, xd, f1, f2, D, nuH * x + nuHe * (y1 + 2.0 * y2) + nuD * xd


@nb.njit(**_JIT)
def _eos_P_T(P, T, nuH, nuHe, nuD, nunuc, rho, nad, cP, delta, state):
    """``eos_from_P_T`` on a batch: rho [g cm^-3]; with ``state`` also nabla_ad, c_P, delta.

    P total pressure [dyn cm^-2], T [K], nu* numbers per gram of H, He, donor and all nuclei
    (``eos._abundances``).  The Newton iteration on u = ln n_e runs in lockstep over the batch.
    """
    m = P.size
    Pg = np.empty(m)
    KH = np.empty(m)
    K1 = np.empty(m)
    K2 = np.empty(m)
    KD = np.empty(m)
    lnPkT = np.empty(m)
    u = np.empty(m)
    frozen = np.zeros(m, np.bool_)
    big = np.zeros(m, np.bool_)
    for j in range(m):
        Tj = T[j]
        pg = P[j] - A_RAD * Tj**4.0 / 3.0
        if not pg > 0:
            pg = np.nan
        Pg[j] = pg
        phi = _PHI0 * Tj**1.5
        kT = K_B * Tj
        KH[j] = 1.0 * phi * np.exp(-CHI_H / kT)
        K1[j] = 4.0 * phi * np.exp(-CHI_HE1 / kT)
        K2[j] = 1.0 * phi * np.exp(-CHI_HE2 / kT)
        KD[j] = 1.0 * phi * np.exp(-CHI_DONOR / kT)
        E_full = nuH[j] + 2.0 * nuHe[j] + nuD[j]
        u[j] = np.log(pg / (K_B * Tj) * E_full / (nunuc[j] + E_full))
        lnPkT[j] = np.log(pg / (K_B * Tj))
    for _ in range(40):
        again = False
        for j in range(m):
            if frozen[j]:
                again = again or big[j]
                continue
            x, xd, f1, f2, D, E = _saha(np.exp(u[j]), KH[j], KD[j], K1[j], K2[j], nuH[j], nuHe[j], nuD[j])
            df1 = -f1
            df2 = -2.0 * f2
            dD = df1 + df2
            D2 = D * D
            dy1 = (df1 * D - f1 * dD) / D2
            dy2 = (df2 * D - f2 * dD) / D2
            E_u = -nuH[j] * x * (1.0 - x) - nuD[j] * xd * (1.0 - xd) + nuHe[j] * (dy1 + 2.0 * dy2)
            h = u[j] - lnPkT[j] - np.log(E) + np.log(nunuc[j] + E)
            hu = 1.0 - E_u / E + E_u / (nunuc[j] + E)
            du = h / hu
            un = u[j] - du
            big[j] = abs(du) >= 1e-11
            if un == u[j] or (un != un and u[j] != u[j]):
                frozen[j] = True
            u[j] = un
            again = again or big[j]
        if not again:
            break
    for j in range(m):
        Tj = T[j]
        x, xd, f1, f2, D, E = _saha(np.exp(u[j]), KH[j], KD[j], K1[j], K2[j], nuH[j], nuHe[j], nuD[j])
        r = Pg[j] / (K_B * Tj * (nunuc[j] + E))
        rho[j] = r
        if not state:
            continue
        # eos._state: the analytic derivatives of the Saha balance
        kT = K_B * Tj
        aH = 1.5 + CHI_H / kT
        a1 = 1.5 + CHI_HE1 / kT
        a2 = 1.5 + CHI_HE2 / kT
        aD = 1.5 + CHI_DONOR / kT
        x_u = -x * (1.0 - x)
        xd_u = -xd * (1.0 - xd)
        D2 = D * D
        df1 = -f1
        df2 = -2.0 * f2
        dD = df1 + df2
        y1_u = (df1 * D - f1 * dD) / D2
        y2_u = (df2 * D - f2 * dD) / D2
        x_t = x * (1.0 - x) * aH
        xd_t = xd * (1.0 - xd) * aD
        df1 = a1 * f1
        df2 = (a1 + a2) * f2
        dD = df1 + df2
        y1_t = (df1 * D - f1 * dD) / D2
        y2_t = (df2 * D - f2 * dD) / D2
        E_u = nuH[j] * x_u + nuHe[j] * (y1_u + 2.0 * y2_u) + nuD[j] * xd_u
        E_t = nuH[j] * x_t + nuHe[j] * (y1_t + 2.0 * y2_t) + nuD[j] * xd_t
        hu = 1.0 - E_u / E
        u_l = 1.0 / hu
        u_t = (E_t / E) / hu
        dx_t = x_u * u_t + x_t
        dxd_t = xd_u * u_t + xd_t
        dy1_t = y1_u * u_t + y1_t
        dy2_t = y2_u * u_t + y2_t
        dE_l = E_u * u_l
        dE_t = nuH[j] * dx_t + nuHe[j] * (dy1_t + 2.0 * dy2_t) + nuD[j] * dxd_t
        P_gas = r * kT * (nunuc[j] + E)
        T4 = Tj**4.0
        P_rad = A_RAD * T4 / 3.0
        Ptot = P_gas + P_rad
        beta = P_gas / Ptot
        chi_rho = beta * (1.0 + dE_l / (nunuc[j] + E))
        chi_T = beta * (1.0 + dE_t / (nunuc[j] + E)) + 4.0 * (1.0 - beta)
        de_t = (
            1.5 * kT * (nunuc[j] + E)
            + 1.5 * kT * dE_t
            + nuH[j] * CHI_H * dx_t
            + nuD[j] * CHI_DONOR * dxd_t
            + nuHe[j] * (CHI_HE1 * dy1_t + (CHI_HE1 + CHI_HE2) * dy2_t)
            + 4.0 * A_RAD * T4 / r
        )
        c_V = de_t / Tj
        g3m1 = Ptot * chi_T / (r * Tj * c_V)
        gamma1 = chi_T * g3m1 + chi_rho
        cP[j] = c_V * gamma1 / chi_rho
        delta[j] = chi_T / chi_rho
        nad[j] = g3m1 / gamma1


@nb.njit(**_JIT)
def _opacity(T, rho, ix, wx, iz, wz, flat, nz, nt, nr, t0, t1, dt, r0, r1, dr):
    """``rosseland_opacity`` at one point [cm^2 g^-1]; (ix, wx), (iz, wz) the star's X and Z nodes.

    ``flat`` is the log10 kappa table raveled; (t0, t1, dt), (r0, r1, dr) the first and last
    node and the spacing of its uniform log T and log R axes.
    """
    lt = np.log10(T)
    lr = np.log10(rho) - 3.0 * (lt - 6.0)
    bad = not (np.isfinite(lt) and np.isfinite(lr))
    if bad:
        lt = 4.0
        lr = -4.0
    s = (min(max(lt, t0), t1) - t0) / dt
    it = min(max(int(s), 0), nt - 2)
    wt = s - it
    s = (min(max(lr, r0), r1) - r0) / dr
    ir = min(max(int(s), 0), nr - 2)
    wr = s - ir
    base = ((ix * nz + iz) * nt + it) * nr + ir
    out = 0.0
    for dx in range(2):
        fx = 1.0 - wx if dx == 0 else wx
        for dz in range(2):
            fz = 1.0 - wz if dz == 0 else wz
            for dtt in range(2):
                ft = 1.0 - wt if dtt == 0 else wt
                k = base + ((dx * nz + dz) * nt + dtt) * nr
                out += (fx * fz * ft) * ((1.0 - wr) * flat[k] + wr * flat[k + 1])
    if bad:
        return np.nan
    return 10.0**out


@nb.njit(**_JIT)
def _mlt(nrad, nad, kap, rho, T, P, g, cP, delta, alpha, nabla, v):
    """``mlt_solve`` on a batch: nabla and v_conv [cm s^-1]; the cubic's Newton runs in lockstep."""
    m = nrad.size
    U = np.empty(m)
    Uw = np.empty(m)
    Ww = np.empty(m)
    c = np.empty(m)
    d = np.empty(m)
    conv = np.empty(m, np.bool_)
    frozen = np.zeros(m, np.bool_)
    big = np.zeros(m, np.bool_)
    for j in range(m):
        H_P = P[j] / (rho[j] * g[j])
        l_m = alpha * H_P
        cv = nrad[j] > nad[j]
        conv[j] = cv
        W = nrad[j] - nad[j] if cv else 0.0
        Uj = (
            3.0 * A_RAD * C_LIGHT * T[j] ** 3.0 / (cP[j] * (rho[j] * rho[j]) * kap[j] * (l_m * l_m))
            * np.sqrt(8.0 * H_P / (g[j] * delta[j]))
        )
        U[j] = Uj
        uw = Uj if cv else 1.0
        ww = W if cv else 1.0
        Uw[j] = uw
        Ww[j] = ww
        d[j] = ww / (np.sqrt(uw * uw + ww) + uw)
        c[j] = 8.0 * uw / 9.0
    for _ in range(60):
        again = False
        for j in range(m):
            if frozen[j]:
                again = again or big[j]
                continue
            dj = d[j]
            f = dj**3.0 + c[j] * (dj * (dj + 2.0 * Uw[j]) - Ww[j])
            fp = 3.0 * dj * dj + 2.0 * c[j] * (dj + Uw[j])
            step = f / (fp if fp > 0 else 1.0)
            dn = _np_maximum0(dj - step)
            big[j] = abs(step) > 1e-12 * dn
            if dn == dj or (dn != dn and dj != dj):
                frozen[j] = True
            d[j] = dn
            again = again or big[j]
        if not again:
            break
    for j in range(m):
        if conv[j]:
            H_P = P[j] / (rho[j] * g[j])
            l_m = alpha * H_P
            nabla[j] = nad[j] + d[j] * (d[j] + 2.0 * U[j])
            v[j] = l_m * np.sqrt(g[j] * delta[j] / (8.0 * H_P)) * d[j]
        else:
            nabla[j] = nrad[j]
            v[j] = 0.0


@nb.njit(**_JIT)
def _kappa_atm(tau, Pg, Teff, nu, xz, tab, kap):
    """kappa [cm^2 g^-1] of every star at optical depth ``tau`` and gas pressure ``Pg`` (the atmosphere's kappa_of)."""
    n = Pg.size
    flat, nz, nt, nr, t0, t1, dt, r0, r1, dr = tab
    fac = (0.75 * (tau + _TWO_THIRDS)) ** 0.25
    T = np.empty(n)
    P = np.empty(n)
    for j in range(n):
        T[j] = Teff[j] * fac
        P[j] = Pg[j] + A_RAD * T[j] ** 4.0 / 3.0
    rho = np.empty(n)
    # only rho is wanted here: with state=False the other three outputs are left untouched
    _eos_P_T(P, T, nu[0], nu[1], nu[2], nu[3], rho, rho, rho, rho, False)
    for j in range(n):
        kap[j] = _opacity(T[j], rho[j], int(xz[0, j]), xz[1, j], int(xz[2, j]), xz[3, j],
                          flat, nz, nt, nr, t0, t1, dt, r0, r1, dr)


@nb.njit(**_JIT)
def _pressure_at(tau, n_iter, Pg, Teff, g, f_rad, nu, xz, tab, kap):  # noqa: ANN001, ANN202
    """Gas pressure at optical depth ``tau`` (Pg, updated in place from its start value) by
    ``n_iter`` steps of the numpy code's damped fixed point P <- sqrt(P tau (g/kappa - f_rad)),
    then the opacity there (kap)."""
    for _ in range(n_iter):
        _kappa_atm(tau, Pg, Teff, nu, xz, tab, kap)
        for j in range(Pg.size):
            target = tau * (g[j] / kap[j] - f_rad[j])
            if not target > 0:
                target = 1e-30 * Pg[j]
            Pg[j] = np.sqrt(Pg[j] * target)
    _kappa_atm(tau, Pg, Teff, nu, xz, tab, kap)


@nb.njit(**_JIT)
def atmosphere(Teff, g, nu, xz, tab, tau_top, grid, simple):
    """Grey Eddington atmosphere of every star: P_gas [dyn cm^-2] and column [g cm^-2] at tau = 2/3, ok.

    Parameters
    ----------
    Teff : (n,) K.   g : (n,) surface gravity, cm s^-2.
    nu : (4, n) numbers per gram of H, He, donor, all nuclei (``eos._abundances``).
    xz : (4, n) the X and log Z nodes of the opacity table and their weights (ix, wx, iz, wz).
    tab : (flat log10 kappa table, nz, nt, nr, t0, t1, dt, r0, r1, dr), see :func:`_opacity`.
    tau_top : optical depth where the integration starts.
    grid : (n_tau + 1,) the ln tau nodes from ln tau_top to ln 2/3.
    simple : MESA's ``simple_photosphere`` condition instead of the integration.
    """
    n = Teff.size
    f_rad = np.empty(n)
    Pg = np.empty(n)
    for j in range(n):
        f_rad[j] = SIGMA_SB * Teff[j] ** 4.0 / C_LIGHT
        Pg[j] = tau_top * g[j] / 1e-2
    kap = np.empty(n)
    ok = np.empty(n, np.bool_)
    if simple:
        tau = _TWO_THIRDS
        _pressure_at(tau, 40, Pg, Teff, g, f_rad, nu, xz, tab, kap)
        col = np.empty(n)
        for j in range(n):
            ok[j] = (g[j] / kap[j] > f_rad[j]) and np.isfinite(Pg[j])
            col[j] = tau / kap[j]
        return Pg, col, ok
    # starting gas pressure at tau_top: the damped fixed point of the numpy code
    _pressure_at(tau_top, 30, Pg, Teff, g, f_rad, nu, xz, tab, kap)
    y0 = np.empty(n)
    y1 = np.empty(n)
    for j in range(n):
        ok[j] = g[j] / kap[j] > f_rad[j]
        y0[j] = np.log(Pg[j])
        y1[j] = tau_top / kap[j]
    k0 = np.empty((4, n))
    k1 = np.empty((4, n))
    ys0 = np.empty(n)
    ys1 = np.empty(n)
    Pgs = np.empty(n)
    for s in range(grid.size - 1):
        a = grid[s]
        b = grid[s + 1]
        h = b - a
        for stage in range(4):
            if stage == 0:
                lt = a
                for j in range(n):
                    ys0[j] = y0[j]
                    ys1[j] = y1[j]
            elif stage < 3:
                lt = a + h / 2
                for j in range(n):
                    ys0[j] = y0[j] + h / 2 * k0[stage - 1, j]
                    ys1[j] = y1[j] + h / 2 * k1[stage - 1, j]
            else:
                lt = b
                for j in range(n):
                    ys0[j] = y0[j] + h * k0[2, j]
                    ys1[j] = y1[j] + h * k1[2, j]
            tau = np.exp(lt)
            for j in range(n):
                Pgs[j] = np.exp(ys0[j])
            _kappa_atm(tau, Pgs, Teff, nu, xz, tab, kap)
            for j in range(n):
                k0[stage, j] = tau * (g[j] / kap[j] - f_rad[j]) / Pgs[j]
                k1[stage, j] = tau / kap[j]
        for j in range(n):
            y0[j] = y0[j] + h / 6 * (k0[0, j] + 2 * k0[1, j] + 2 * k0[2, j] + k0[3, j])
            y1[j] = y1[j] + h / 6 * (k1[0, j] + 2 * k1[1, j] + 2 * k1[2, j] + k1[3, j])
            ok[j] = ok[j] and (np.isfinite(y0[j]) and np.isfinite(y1[j])) and (k0[0, j] > -50.0)
    for j in range(n):
        ok[j] = ok[j] and np.isfinite(y0[j]) and np.isfinite(y1[j])
        Pg[j] = np.exp(y0[j])
    return Pg, y1, ok


@nb.njit(**_JIT)
def _deriv(lnP, y, idx, M, L, nu, xz, tab, alpha, d, rho, nabla, v, gamma):
    """Right-hand side of the envelope equations for the stars ``idx`` at states (lnP, y).

    y rows: r [cm], ln T, column [g cm^-2], m_env [g]; d gets their derivatives in ln P.
    Also fills rho [g cm^-3], nabla, v_conv [cm s^-1] and the Rosseland Eddington factor.
    """
    m = idx.size
    flat, nz, nt, nr, t0, t1, dt, r0, r1, dr = tab
    P = np.empty(m)
    T = np.empty(m)
    mm = np.empty(m)
    g = np.empty(m)
    nuH = np.empty(m)
    nuHe = np.empty(m)
    nuD = np.empty(m)
    nunuc = np.empty(m)
    for j in range(m):
        i = idx[j]
        P[j] = np.exp(lnP[j])
        T[j] = np.exp(y[1, j])
        mm[j] = M[i] - y[3, j]
        nuH[j] = nu[0, i]
        nuHe[j] = nu[1, i]
        nuD[j] = nu[2, i]
        nunuc[j] = nu[3, i]
    nad = np.empty(m)
    cP = np.empty(m)
    delta = np.empty(m)
    _eos_P_T(P, T, nuH, nuHe, nuD, nunuc, rho, nad, cP, delta, True)
    kap = np.empty(m)
    nrad = np.empty(m)
    for j in range(m):
        i = idx[j]
        kap[j] = _opacity(T[j], rho[j], int(xz[0, i]), xz[1, i], int(xz[2, i]), xz[3, i],
                          flat, nz, nt, nr, t0, t1, dt, r0, r1, dr)
        r = y[0, j]
        g[j] = G_GRAV * mm[j] / (r * r)
        nrad[j] = 3.0 * kap[j] * L[i] * P[j] / (16.0 * _PI * A_RAD * C_LIGHT * G_GRAV * mm[j] * T[j] ** 4.0)
    _mlt(nrad, nad, kap, rho, T, P, g, cP, delta, alpha, nabla, v)
    for j in range(m):
        i = idx[j]
        r = y[0, j]
        d[0, j] = -P[j] / (rho[j] * g[j])
        d[1, j] = nabla[j]
        d[2, j] = P[j] / g[j]
        d[3, j] = 4.0 * _PI * r * r * P[j] / g[j]
        gamma[j] = kap[j] * L[i] / (4.0 * _PI * C_LIGHT * G_GRAV * mm[j])


@nb.njit(**_JIT)
def integrate_envelope(M, R, L, nu, xz, tab, alpha, lnP0, h, y, done, n_max,
                       column_stop, mass_frac_stop, radius_stop):
    """RK4 in ln P from the photosphere inward, every star with its own step, up to ``n_max`` steps.

    Parameters
    ----------
    M : (n,) g.   R : (n,) cm.   L : (n,) erg s^-1.   nu, xz, tab : as for :func:`atmosphere`.
    alpha : mixing length in pressure scale heights.
    lnP0, h : (n,) ln of the photospheric total pressure [dyn cm^-2] and the step in it.
    y : (4, n) start state r [cm], ln T, column [g cm^-2], m_env [g]; advanced in place.
    done : (n,) bool, True for the stars not to integrate (failed atmospheres); updated in place.
    n_max : last step index.
    column_stop, mass_frac_stop, radius_stop : the stopping criteria of ``envelope_profiles``.

    Returns
    -------
    nodes : (6, n_max + 1, n) r, ln T, column, m_env, ln rho, nabla at every node (NaN beyond).
    vnode : (n_max + 1, n) v_conv at the nodes, cm s^-1.
    k_stop : (n,) last node of each star.   fail, bad_step : (n,) bool.
    gamma_max, logT_gmax : (n,) largest Rosseland Eddington factor met and log10 T there
        (``gamma_max`` enters as 0 for the stars to integrate, NaN for the others).
    k_last : the last step index the loop reached.
    """
    n = M.size
    nodes = np.full((6, n_max + 1, n), np.nan)
    vnode = np.zeros((n_max + 1, n))
    fail = done.copy()
    k_stop = np.zeros(n, np.int64)
    gamma_max = np.empty(n)
    logT_gmax = np.full(n, np.nan)
    bad_step = np.zeros(n, np.bool_)
    for i in range(n):
        gamma_max[i] = np.nan if done[i] else 0.0
    lnP = lnP0.copy()
    k = 0
    for k in range(n_max + 1):
        m = 0
        for i in range(n):
            if not done[i]:
                m += 1
        if m == 0:
            break
        idx = np.empty(m, np.int64)
        m = 0
        for i in range(n):
            if not done[i]:
                idx[m] = i
                m += 1
        yi = np.empty((4, m))
        lp = np.empty(m)
        hi = np.empty(m)
        for j in range(m):
            i = idx[j]
            for q in range(4):
                yi[q, j] = y[q, i]
            lp[j] = lnP[i]
            hi[j] = h[i]
        kk = np.empty((4, 4, m))
        rho = np.empty(m)
        nab = np.empty(m)
        v = np.empty(m)
        gam = np.empty(m)
        _deriv(lp, yi, idx, M, L, nu, xz, tab, alpha, kk[0], rho, nab, v, gam)
        for j in range(m):
            i = idx[j]
            if np.isfinite(gam[j]) and gam[j] > gamma_max[i]:
                gamma_max[i] = gam[j]
                logT_gmax[i] = yi[1, j] / _LN10
            for q in range(4):
                nodes[q, k, i] = yi[q, j]
            nodes[4, k, i] = np.log(rho[j])
            nodes[5, k, i] = nab[j]
            vnode[k, i] = v[j]
            bad = not (np.isfinite(kk[0, 0, j]) and np.isfinite(kk[0, 1, j]) and np.isfinite(kk[0, 2, j])
                       and np.isfinite(kk[0, 3, j]) and np.isfinite(rho[j]) and rho[j] > 0 and np.isfinite(v[j]))
            reached = ((yi[2, j] >= column_stop) or (yi[3, j] >= mass_frac_stop * M[i])
                       or (yi[0, j] <= radius_stop * R[i])) and not bad
            if bad:
                fail[i] = True
                bad_step[i] = True
            k_stop[i] = k
            if bad or reached:
                done[i] = True
        if k == n_max:
            break
        ys = np.empty((4, m))
        ls = np.empty(m)
        for stage in range(1, 4):
            for j in range(m):
                if stage < 3:
                    hs = hi[j] / 2
                    ls[j] = lp[j] + hi[j] / 2
                else:
                    hs = hi[j]
                    ls[j] = lp[j] + hi[j]
                for q in range(4):
                    ys[q, j] = yi[q, j] + hs * kk[stage - 1, q, j]
            _deriv(ls, ys, idx, M, L, nu, xz, tab, alpha, kk[stage], rho, nab, v, gam)
        for j in range(m):
            i = idx[j]
            for q in range(4):
                y[q, i] = yi[q, j] + hi[j] / 6 * (kk[0, q, j] + 2 * kk[1, q, j] + 2 * kk[2, q, j] + kk[3, q, j])
            lnP[i] = lp[j] + hi[j]
    return nodes, vnode, k_stop, fail, bad_step, gamma_max, logT_gmax, k
