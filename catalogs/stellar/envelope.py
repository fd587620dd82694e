"""Near-surface stellar structure (density, temperature, convective velocity, column)
for the built-in template generator (docs/physics.md P5).

Model, per star (all stars of a batch integrated together, vectorised over models):

1. Atmosphere: grey Eddington T^4 = 3/4 Teff^4 (tau + 2/3). The gas pressure is integrated
   in ln tau from ``tau_top`` (1e-4) to the photosphere tau = 2/3 with
   dP_gas/dtau = g/kappa - sigma Teff^4 / c (the total pressure obeys dP/dtau = g/kappa;
   the radiation part is the Eddington a T^4/3), fixed-step RK4. The column above the
   photosphere is integral dtau/kappa plus tau_top/kappa(tau_top), which equals
   P_surf/g for negligible radiation pressure (docs/physics.md convention) and is the
   correct mass column when it is not.
2. Envelope: from the photosphere (r = R, T = Teff) inward, integration in ln P (total
   pressure) with a fixed number of RK4 steps per model:
       dr/dlnP = -P/(rho g),  dlnT/dlnP = nabla,  dcolumn/dlnP = P/g,
       dm_env/dlnP = 4 pi r^2 P/g,  g = G (M - m_env) / r^2
   i.e. the mass of the integrated layers IS included in g (it matters for red
   supergiants, whose outer envelope holds a large part of the mass). L is constant (the
   given L_star). EOS: ideal gas + radiation + Saha H/He (:mod:`catalogs.stellar.eos`).
   Opacity: OPAL + Ferguson through rm-tables (:mod:`catalogs.stellar.opacity`).
   nabla: radiative or MLT with radiative losses, alpha_mlt = 1.8
   (:mod:`catalogs.stellar.mlt`).
   Integration stops at the first of: column >= ``column_stop`` (1e8 g cm^-2), integrated
   envelope mass >= ``mass_frac_stop`` * M (0.5), r <= ``radius_stop`` * R (0.02).
   Saha without pressure ionisation leaves H a few per cent neutral at rho ~ 0.1-1 g cm^-3
   and T ~ 1e6 K; that only occurs below the 1e6-1e8 g cm^-2 layers that matter.
3. Continuation to the centre (r < r_b, the stopping radius) **[choice]**: a
   mass-conserving monotonic cap
       rho(r) = rho_b [1 + A (1 - (r/r_b)^2)^2],
   continuous with the envelope at r_b, with A >= 0 fixed so that the continuation holds
   the remaining mass M - m_env (A = 0, uniform density, if even that holds too much).
   P follows from hydrostatic equilibrium of that density law, T from the ideal-gas
   relation at fixed mu (T = T_b (P/P_b)/(rho/rho_b)), v_conv = 0 and nabla is
   dlnT/dlnP of that law. This region carries a column >> 1e6 g cm^-2 (or, for extended
   giants, the whole remaining mass), so no observable depends on its detail.

Failure handling: a model is flagged ``converged = False`` and its profile arrays are NaN
when the gas pressure vanishes (radiation pressure alone would exceed the total: an
atmosphere at or above the Eddington limit, g <= kappa sigma Teff^4 / c, or an inflated
radiation-dominated envelope), when any quantity turns non-finite, or when none of the
stopping criteria is reached within the integration range. Nothing is extrapolated for
such a model; the caller must skip it or substitute another template. ``failure`` says
why, in words, for each model.

The case met in practice is the hot stripped E-AGB star (SSE tracks of 16-20 Msun at
Z = 0.02-0.03: M ~ 5-7 Msun, Teff 78-97 kK, L/M ~ 2-2.8e4 Lsun/Msun). Its
electron-scattering Eddington factor is only 0.49-0.70, but OPAL's iron bump (log T
5.1-5.3) keeps the Rosseland opacity at 0.65-0.7 cm^2 g^-1 even at the lowest tabulated
density, so Gamma = kappa L / (4 pi c G m) is 1.2-1.5 there, below the photosphere. The
gas then carries ~1e-4 of the pressure, MLT convection at rho ~ 1e-11 g cm^-3 is slightly
superadiabatic (nabla - nabla_ad ~ 1e-4 > beta / 4, so P_gas falls inward), and the gas
pressure reaches zero within a few steps: no hydrostatic envelope exists for these
(R, L, M). Such stars inflate or drive an optically thick wind; neither is in this model.

Neglected: turbulent pressure, H2 molecules in the coolest atmospheres, non-grey and
3-D effects, rotation. Units: cgs, except the API inputs M_star [Msun], L_star [Lsun].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import constants as _c

from .eos import A_RAD, eos_from_P_T, eos_from_rho_T
from .mlt import C_LIGHT, mlt_solve
from .opacity import rosseland_opacity

__all__ = ["EnvelopeProfiles", "envelope_profiles", "convective_velocity",
           "eos_from_P_T", "eos_from_rho_T", "rosseland_opacity"]

G_GRAV = _c.G.cgs.value
M_SUN = _c.M_sun.cgs.value
L_SUN = _c.L_sun.cgs.value
SIGMA_SB = _c.sigma_sb.cgs.value


@dataclass
class EnvelopeProfiles:
    """Profiles on the shared radius grid.

    Attributes
    ----------
    radius : (n_radius,) r / R_star, ascending, radius[-1] = 1 (photosphere, tau = 2/3).
    rho : (n_models, n_radius) g cm^-3.
    T : (n_models, n_radius) K.
    P : (n_models, n_radius) total pressure, dyn cm^-2.
    v_conv : (n_models, n_radius) cm s^-1, 0 where radiative and in the continuation.
    column : (n_models, n_radius) g cm^-2 vertical column from the top of the atmosphere
        (includes the column above the photosphere).
    nabla : (n_models, n_radius) dlnT/dlnP.
    P_surf : (n_models,) total pressure at the photosphere, dyn cm^-2.
    column_surf : (n_models,) column above the photosphere, g cm^-2 (~ P_surf/g).
    radius_base : (n_models,) r/R where the integrated envelope joins the continuation.
    column_base : (n_models,) column at radius_base, g cm^-2.
    mass_env : (n_models,) mass of the integrated envelope / M_star.
    converged : (n_models,) bool; False -> all profile arrays of that model are NaN.
    failure : (n_models,) str, why a model did not converge ("" when it did).
    gamma_max : (n_models,) largest Rosseland Eddington factor kappa L / (4 pi c G m) met
        at the integration nodes (NaN where the atmosphere already failed).
    logT_gamma_max : (n_models,) log10 T [K] where ``gamma_max`` was met.
    """

    radius: np.ndarray
    rho: np.ndarray
    T: np.ndarray
    P: np.ndarray
    v_conv: np.ndarray
    column: np.ndarray
    nabla: np.ndarray
    P_surf: np.ndarray
    column_surf: np.ndarray
    radius_base: np.ndarray
    column_base: np.ndarray
    mass_env: np.ndarray
    converged: np.ndarray
    failure: np.ndarray
    gamma_max: np.ndarray
    logT_gamma_max: np.ndarray


def _local_structure(lnP, r, lnT, m, L, X, Z, alpha_mlt, opac):
    """rho, kappa, nabla, v_conv, g at one set of states (all arrays (n,))."""
    P = np.exp(lnP)
    T = np.exp(lnT)
    s = eos_from_P_T(P, T, X, Z)
    rho = s.rho
    kap = rosseland_opacity(T, rho, X, Z, *opac)
    g = G_GRAV * m / (r * r)
    nrad = 3.0 * kap * L * P / (16.0 * np.pi * A_RAD * C_LIGHT * G_GRAV * m * T ** 4)
    nabla, v = mlt_solve(nrad, s.nabla_ad, kap, rho, T, P, g, s.c_P, s.delta, alpha_mlt)
    return rho, kap, nabla, v, g


def _atmosphere(Teff, g, X, Z, tau_top, n_tau, simple=False, opac=("ferguson", "GS98hz")):
    """Grey Eddington atmosphere; returns P_gas and column at tau = 2/3 and an ok flag."""
    f_rad = SIGMA_SB * Teff ** 4 / C_LIGHT       # dP_rad/dtau

    def T_of(tau):
        return Teff * (0.75 * (tau + 2.0 / 3.0)) ** 0.25

    def kappa_of(tau, Pg):
        T = T_of(tau)
        s = eos_from_P_T(Pg + A_RAD * T ** 4 / 3.0, T, X, Z)
        return rosseland_opacity(T, s.rho, X, Z, *opac)

    # starting gas pressure at tau_top: fixed point of Pg = tau (g/kappa - f_rad),
    # damped geometrically because kappa(P) ~ P^(1/2) in H- dominated atmospheres
    Pg = tau_top * g / 1e-2
    for _ in range(30):
        kap = kappa_of(tau_top, Pg)
        target = tau_top * (g / kap - f_rad)
        target = np.where(target > 0, target, 1e-30 * Pg)
        Pg = np.sqrt(Pg * target)
    ok = g / kappa_of(tau_top, Pg) > f_rad
    col = tau_top / kappa_of(tau_top, Pg)
    if simple:
        # MESA 'simple_photosphere'-like: P_gas(tau=2/3) = 2/3 (g/kappa_phot - f_rad)
        Pg = tau_top * g / 1e-2
        tau = 2.0 / 3.0
        for _ in range(40):
            kap = kappa_of(tau, Pg)
            target = tau * (g / kap - f_rad)
            target = np.where(target > 0, target, 1e-30 * Pg)
            Pg = np.sqrt(Pg * target)
        kap = kappa_of(tau, Pg)
        ok = g / kap > f_rad
        return Pg, tau / kap, ok & np.isfinite(Pg)

    def deriv(lt, y):
        tau = np.exp(lt)
        Pg = np.exp(y[0])
        kap = kappa_of(tau, Pg)
        return np.stack([tau * (g / kap - f_rad) / Pg, tau / kap])

    grid = np.linspace(np.log(tau_top), np.log(2.0 / 3.0), n_tau + 1)
    y = np.stack([np.log(Pg), col])
    with np.errstate(all="ignore"):
        for a, b in zip(grid[:-1], grid[1:]):
            h = b - a
            k1 = deriv(a, y)
            k2 = deriv(a + h / 2, y + h / 2 * k1)
            k3 = deriv(a + h / 2, y + h / 2 * k2)
            k4 = deriv(b, y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            ok &= np.all(np.isfinite(y), axis=0) & (k1[0] > -50.0)
    return np.exp(y[0]), y[1], ok & np.all(np.isfinite(y), axis=0)


def _continuation(r_grid, r_b, rho_b, T_b, P_b, col_b, m_core):
    """Mass-conserving cap below r_b (see module docstring). r_grid (n, k) in cm."""
    x = np.clip(r_grid / r_b[:, None], 0.0, 1.0)
    A = (m_core / (4.0 * np.pi * rho_b * r_b ** 3) - 1.0 / 3.0) / (8.0 / 105.0)
    A = np.maximum(A, 0.0)[:, None]
    rho = rho_b[:, None] * (1.0 + A * (1.0 - x * x) ** 2)
    col = col_b[:, None] + rho_b[:, None] * r_b[:, None] * (
        (1.0 - x) + A * ((1.0 - x) - 2.0 / 3.0 * (1.0 - x ** 3) + 0.2 * (1.0 - x ** 5)))
    # hydrostatic P: dP/dx = -G rho m / r^2 * r_b; integrate on a fine x grid
    xf = np.linspace(0.0, 1.0, 401)[None, :]
    rhof = 1.0 + A * (1.0 - xf * xf) ** 2
    mf_over_x2 = xf * (1.0 / 3.0 + A * (1.0 / 3.0 - 0.4 * xf ** 2 + xf ** 4 / 7.0))
    integrand = rhof * mf_over_x2                       # in units rho_b^2 r_b^2 4 pi G
    cum = np.concatenate([np.zeros((integrand.shape[0], 1)),
                          np.cumsum(0.5 * (integrand[:, 1:] + integrand[:, :-1])
                                    * np.diff(xf, axis=1), axis=1)], axis=1)
    from_top = cum[:, -1:] - cum                        # integral from x to 1
    scale = 4.0 * np.pi * G_GRAV * rho_b ** 2 * r_b ** 2
    Pf = P_b[:, None] + scale[:, None] * from_top
    P = np.empty_like(x)
    for i in range(x.shape[0]):                         # cheap: one np.interp per model
        P[i] = np.interp(x[i], xf[0], Pf[i])
    T = T_b[:, None] * (P / P_b[:, None]) / (rho / rho_b[:, None])
    return rho, T, P, col


def envelope_profiles(M_star, R_star, L_star, Teff, X, Z, radius, alpha_mlt=1.8,
                      *, tau_top: float = 1e-4, n_tau: int = 24, n_steps: int = 320,
                      column_stop: float = 1e8, mass_frac_stop: float = 0.5,
                      radius_stop: float = 0.02,
                      atmosphere: str = "eddington", opacity_cold: str = "ferguson",
                      opal_set: str = "GS98hz") -> EnvelopeProfiles:
    """Near-surface structure of many stars on the shared radius grid.

    Parameters
    ----------
    M_star : array_like (n_models,) or scalar, Msun.
    R_star : photospheric radius (tau = 2/3), cm.
    L_star : luminosity, Lsun.
    Teff : effective temperature, K.
    X, Z : surface hydrogen and metal mass fractions.
    radius : (n_radius,) r/R_star ascending, radius[0] = 0, radius[-1] = 1.
    alpha_mlt : mixing length in pressure scale heights (docs/physics.md P5: 1.8).
    tau_top : optical depth where the atmosphere integration starts (1e-4).
    n_tau : RK4 steps in ln tau across the atmosphere.
    n_steps : RK4 steps in ln P across the envelope. Each model gets its own step,
        (ln(g_surf column_stop) + 3 - ln P_surf) / n_steps; a model that has not met a
        stopping criterion after n_steps continues with the same step for up to
        n_steps more (extended giants, where g grows inward). At 240 steps the column
        and density above 1e6 g cm^-2 agree with a 1200-step run to < 1 % and < 3 %,
        the v_conv peak to < 1 %.
    column_stop : column (g cm^-2) where the envelope integration ends (>> 1e6).
    mass_frac_stop : envelope integration also ends when the integrated layers hold this
        fraction of M_star (extended giants).
    radius_stop : ... or at r = radius_stop * R_star.
    atmosphere : {'eddington', 'simple'}
        'eddington' (default, docs/physics.md P5): integrate dP/dtau = g/kappa through the
        grey Eddington atmosphere from tau_top to 2/3. 'simple': MESA's
        ``simple_photosphere`` condition P_gas(2/3) = 2/3 (g/kappa - sigma Teff^4/c) with
        kappa at the photosphere, column above = 2/(3 kappa); only for like-for-like
        comparisons with MESA models built that way. For the Sun 'simple' gives a
        ~35 % lower photospheric pressure, because kappa falls outward (H-).
    opacity_cold, opal_set : rm-tables low-temperature source ('ferguson' = Ferguson et
        al. 2005 GS98) and OPAL set ('GS98hz'); see :mod:`catalogs.stellar.opacity`.

    Returns
    -------
    EnvelopeProfiles
        See its docstring. Models that cannot be integrated (see module docstring) have
        ``converged = False`` and NaN profiles.
    """
    M, R, L, Te, Xa, Za = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, float)) for v in (M_star, R_star, L_star, Teff, X, Z)))
    M = M * M_SUN
    L = L * L_SUN
    radius = np.asarray(radius, float)
    n = M.size
    g_s = G_GRAV * M / R ** 2

    with np.errstate(all="ignore"):
        if atmosphere not in ("eddington", "simple"):
            raise ValueError(f"atmosphere must be 'eddington' or 'simple', not {atmosphere!r}")
        Pg_s, col_s, ok = _atmosphere(Te, g_s, Xa, Za, tau_top, n_tau,
                                      simple=(atmosphere == "simple"),
                                      opac=(opacity_cold, opal_set))
        P_s = Pg_s + A_RAD * Te ** 4 / 3.0

        # envelope: fixed number of RK4 steps in ln P per model
        lnP0 = np.log(P_s)
        lnP1 = np.log(np.maximum(g_s * column_stop, P_s)) + 3.0
        h = (lnP1 - lnP0) / n_steps
        y = np.stack([R.copy(), np.log(Te), col_s.copy(), np.zeros(n)])  # r, lnT, col, m_env
        n_max = 2 * n_steps            # range exhausted -> continue with the same step
        nodes = np.full((6, n_max + 1, n), np.nan)   # r, lnT, col, m_env, lnrho, nabla
        vnode = np.zeros((n_max + 1, n))
        done = ~ok
        fail = ~ok
        k_stop = np.zeros(n, int)
        gamma_max = np.where(ok, 0.0, np.nan)
        logT_gmax = np.full(n, np.nan)
        bad_step = np.zeros(n, bool)       # failed inside the integration (not the atmosphere)

        def deriv(lnP, y, ii):
            r, lnT, col, m_env = y
            m = M[ii] - m_env
            rho, kap, nabla, v, g = _local_structure(lnP, r, lnT, m, L[ii], Xa[ii], Za[ii],
                                                     alpha_mlt, (opacity_cold, opal_set))
            P = np.exp(lnP)
            d = np.stack([-P / (rho * g), nabla, P / g, 4.0 * np.pi * r * r * P / g])
            gamma = kap * L[ii] / (4.0 * np.pi * C_LIGHT * G_GRAV * m)
            return d, rho, nabla, v, gamma

        lnP = lnP0.copy()
        for k in range(n_max + 1):
            ii = np.nonzero(~done)[0]          # only models still being integrated
            if ii.size == 0:
                break
            yi, lp, hi = y[:, ii], lnP[ii], h[ii]
            k1, rho_k, nab_k, v_k, gam_k = deriv(lp, yi, ii)
            higher = np.isfinite(gam_k) & (gam_k > gamma_max[ii])
            gamma_max[ii[higher]] = gam_k[higher]
            logT_gmax[ii[higher]] = yi[1, higher] / np.log(10.0)
            nodes[:4, k, ii] = yi
            nodes[4, k, ii] = np.log(rho_k)
            nodes[5, k, ii] = nab_k
            vnode[k, ii] = v_k
            bad = ~(np.all(np.isfinite(k1), axis=0) & np.isfinite(rho_k) & (rho_k > 0)
                    & np.isfinite(v_k))
            reached = ((yi[2] >= column_stop) | (yi[3] >= mass_frac_stop * M[ii])
                       | (yi[0] <= radius_stop * R[ii])) & ~bad
            fail[ii[bad]] = True
            bad_step[ii[bad]] = True
            k_stop[ii] = k
            done[ii[bad | reached]] = True
            if k == n_max:
                break
            k2 = deriv(lp + hi / 2, yi + hi / 2 * k1, ii)[0]
            k3 = deriv(lp + hi / 2, yi + hi / 2 * k2, ii)[0]
            k4 = deriv(lp + hi, yi + hi * k3, ii)[0]
            y[:, ii] = yi + hi / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            lnP[ii] = lp + hi
        n_used = k + 1
        unfinished = ~done
        fail |= unfinished     # never reached a stopping criterion

    conv = ~fail
    nr = radius.size
    rho = np.full((n, nr), np.nan)
    T = np.full((n, nr), np.nan)
    P = np.full((n, nr), np.nan)
    col = np.full((n, nr), np.nan)
    nab = np.full((n, nr), np.nan)
    vc = np.full((n, nr), np.nan)
    idx = np.arange(n)
    ks = np.minimum(k_stop, n_used - 1)
    r_b = nodes[0, ks, idx]
    lnP_nodes = lnP0[None, :] + h[None, :] * np.arange(n_used)[:, None]
    for i in np.nonzero(conv)[0]:
        kk = ks[i] + 1
        rr = nodes[0, :kk, i][::-1] / R[i]                  # ascending
        sel = radius >= rr[0]
        xq = radius[sel]
        rho[i, sel] = np.exp(np.interp(xq, rr, nodes[4, :kk, i][::-1]))
        T[i, sel] = np.exp(np.interp(xq, rr, nodes[1, :kk, i][::-1]))
        P[i, sel] = np.exp(np.interp(xq, rr, lnP_nodes[:kk, i][::-1]))
        col[i, sel] = np.exp(np.interp(xq, rr, np.log(nodes[2, :kk, i][::-1])))
        nab[i, sel] = np.interp(xq, rr, nodes[5, :kk, i][::-1])
        vc[i, sel] = np.interp(xq, rr, vnode[:kk, i][::-1])

    # continuation below r_b for converged models
    ci = np.nonzero(conv)[0]
    if ci.size:
        rb = r_b[ci]
        rgrid = radius[None, :] * R[ci, None]
        below = rgrid < rb[:, None]
        m_core = M[ci] - nodes[3, ks[ci], ci]
        rc, Tc, Pc, cc = _continuation(
            rgrid, rb, np.exp(nodes[4, ks[ci], ci]), np.exp(nodes[1, ks[ci], ci]),
            np.exp(lnP_nodes[ks[ci], ci]), nodes[2, ks[ci], ci], m_core)
        for arr, new in ((rho, rc), (T, Tc), (P, Pc), (col, cc)):
            sub = arr[ci]
            sub[below] = new[below]
            arr[ci] = sub
        with np.errstate(all="ignore"):
            nab_c = np.gradient(np.log(Tc), axis=1) / np.gradient(np.log(Pc), axis=1)
        sub = nab[ci]
        sub[below] = np.nan_to_num(nab_c[below], nan=0.0)
        nab[ci] = sub
        sub = vc[ci]
        sub[below] = 0.0
        vc[ci] = sub
        good = (np.all(np.isfinite(rho[ci]) & (rho[ci] > 0), axis=1)
                & np.all(np.diff(col[ci], axis=1) <= 0, axis=1)
                & np.all(np.isfinite(col[ci]) & (col[ci] > 0), axis=1))
        conv[ci] = good
    for arr in (rho, T, P, col, nab, vc):
        arr[~conv] = np.nan

    failure = np.full(n, "", dtype=object)
    for i in np.nonzero(~conv)[0]:
        failure[i] = _failure_reason(ok[i], bad_step[i], unfinished[i], gamma_max[i], logT_gmax[i])

    return EnvelopeProfiles(
        radius=radius, rho=rho, T=T, P=P, v_conv=vc, column=col, nabla=nab,
        P_surf=np.where(ok, P_s, np.nan), column_surf=np.where(ok, col_s, np.nan),
        radius_base=np.where(conv, r_b / R, np.nan),
        column_base=np.where(conv, nodes[2, ks, idx], np.nan),
        mass_env=np.where(conv, nodes[3, ks, idx] / M, np.nan),
        converged=conv, failure=failure.astype(str), gamma_max=gamma_max,
        logT_gamma_max=logT_gmax)


def _failure_reason(atmosphere_ok: bool, bad_step: bool, unfinished: bool, gamma_max: float,
                    logT: float) -> str:
    """Why one model has no profile, in words with the numbers that decide it."""
    if not atmosphere_ok:
        return "atmosphere above the Eddington limit (g <= kappa sigma Teff^4 / c)"
    if bad_step and gamma_max >= 1.0:
        return (f"super-Eddington envelope: Rosseland Gamma reaches {gamma_max:.2f} at log T = {logT:.2f} "
                "and the gas pressure vanishes")
    if bad_step:
        return "envelope integration turned non-finite"
    if unfinished:
        return "envelope integration reached no stopping criterion"
    return "continuation below the envelope not monotonic"


def convective_velocity(r, m, rho, T, P, L, X, Z, alpha_mlt=1.8, *,
                        opacity_cold: str = "ferguson", opal_set: str = "GS98hz") -> np.ndarray:
    """MLT convective velocity for a GIVEN structure (e.g. a MESA profile).

    Parameters
    ----------
    r : (k,) radius, cm.   m : (k,) enclosed mass, g.
    rho : (k,) g cm^-3.   T : (k,) K.   P : (k,) total pressure, dyn cm^-2.
    L : scalar or (k,) local luminosity L(r), erg s^-1. Pass L(r) where the profile
        reaches into the burning core: a constant surface L there overestimates
        nabla_rad and creates spurious core convection (0.5 km/s in the 1 Msun MESA
        model at 7.6 Gyr).
    X, Z : scalar or (k,) mass fractions.
    alpha_mlt : mixing length in pressure scale heights.
    opacity_cold, opal_set : rm-tables sources, as in :func:`envelope_profiles`.

    Returns
    -------
    ndarray (k,)
        v_conv in cm s^-1; 0 where radiative (Schwarzschild) and where r or m is 0.

    Notes
    -----
    Same EOS (ideal gas + radiation + Saha H/He, evaluated at the given rho, T), opacity
    (rm-tables OPAL + Ferguson) and MLT as :func:`envelope_profiles`. g = G m / r^2,
    nabla_rad = 3 kappa L P / (16 pi a c G m T^4).
    """
    r, m, rho, T, P, L, X, Z = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (r, m, rho, T, P, L, X, Z)))
    ok = (r > 0) & (m > 0) & (rho > 0) & (T > 0) & (P > 0)
    rs = np.where(ok, r, 1.0)
    ms = np.where(ok, m, 1.0)
    rhos = np.where(ok, rho, 1.0)
    Ts = np.where(ok, T, 1e4)
    Ps = np.where(ok, P, 1.0)
    with np.errstate(all="ignore"):
        s = eos_from_rho_T(rhos, Ts, X, Z)
        kap = rosseland_opacity(Ts, rhos, X, Z, opacity_cold, opal_set)
        g = G_GRAV * ms / rs ** 2
        nrad = 3.0 * kap * L * Ps / (16.0 * np.pi * A_RAD * C_LIGHT * G_GRAV * ms * Ts ** 4)
        _, v = mlt_solve(nrad, s.nabla_ad, kap, rhos, Ts, Ps, g, s.c_P, s.delta, alpha_mlt)
    return np.where(ok & np.isfinite(v), v, 0.0)
