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

from . import envelope_kernel as _kernel
from .eos import A_RAD, _abundances, eos_from_P_T, eos_from_rho_T
from .mlt import C_LIGHT, mlt_solve
from .opacity import LOG_R_AXIS, LOG_T_AXIS, X_NODES, Z_NODES, _frac_index, opacity_table, rosseland_opacity

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


def _integrate(M_star, R_star, L_star, Teff, X, Z, alpha_mlt=1.8, *, tau_top=1e-4, n_tau=24,
               n_steps=320, column_stop=1e8, mass_frac_stop=0.5, radius_stop=0.02,
               atmosphere="eddington", opacity_cold="ferguson", opal_set="GS98hz") -> dict:
    """The atmosphere and envelope integration of :func:`envelope_profiles` (same arguments, no radius).

    Returns a dict of the integration state: ``M`` [g], ``R`` [cm], ``P_s`` [dyn cm^-2],
    ``Pg_s``, ``col_s`` [g cm^-2], ``ok`` (atmosphere), ``lnP0``, ``h``, ``nodes`` (6,
    n_used, n) r, ln T, column, m_env, ln rho, nabla, ``vnode`` (n_used, n) v_conv [cm s^-1],
    ``k_stop``, ``done``, ``fail``, ``bad_step``, ``gamma_max``, ``logT_gmax``, ``n_used``.
    """
    M, R, L, Te, Xa, Za = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, float)) for v in (M_star, R_star, L_star, Teff, X, Z)))
    M = M * M_SUN
    L = L * L_SUN
    n = M.size
    g_s = G_GRAV * M / R ** 2

    if atmosphere not in ("eddington", "simple"):
        raise ValueError(f"atmosphere must be 'eddington' or 'simple', not {atmosphere!r}")
    # What stays fixed along a star's integration, precomputed as the numpy code computed it
    # on every call: numbers per gram of each species, and the star's X and log Z nodes in
    # the opacity table (see catalogs.stellar.envelope_kernel).
    nu = np.stack(_abundances(Xa, Za))
    ix, wx = _frac_index(X_NODES, Xa)
    iz, wz = _frac_index(np.log10(Z_NODES), np.log10(np.maximum(Za, 1e-30)))
    xz = np.stack([ix, wx, iz, wz]).astype(float)
    table = opacity_table(opacity_cold, opal_set)
    _, nz, nt, nr = table.shape
    tab = (table.reshape(-1), nz, nt, nr, LOG_T_AXIS[0], LOG_T_AXIS[-1], LOG_T_AXIS[1] - LOG_T_AXIS[0],
           LOG_R_AXIS[0], LOG_R_AXIS[-1], LOG_R_AXIS[1] - LOG_R_AXIS[0])

    with np.errstate(all="ignore"):
        grid = np.linspace(np.log(tau_top), np.log(2.0 / 3.0), n_tau + 1)
        Pg_s, col_s, ok = _kernel.atmosphere(Te, g_s, nu, xz, tab, float(tau_top), grid, atmosphere == "simple")
        P_s = Pg_s + A_RAD * Te ** 4 / 3.0

        # envelope: fixed number of RK4 steps in ln P per model
        lnP0 = np.log(P_s)
        lnP1 = np.log(np.maximum(g_s * column_stop, P_s)) + 3.0
        h = (lnP1 - lnP0) / n_steps
        y = np.stack([R.copy(), np.log(Te), col_s.copy(), np.zeros(n)])  # r, lnT, col, m_env
        n_max = 2 * n_steps            # range exhausted -> continue with the same step
        done = ~ok
        nodes, vnode, k_stop, fail, bad_step, gamma_max, logT_gmax, k = _kernel.integrate_envelope(
            M, R, L, nu, xz, tab, float(alpha_mlt), lnP0, h, y, done, n_max,
            float(column_stop), float(mass_frac_stop), float(radius_stop))
        n_used = k + 1
        unfinished = ~done
        fail |= unfinished     # never reached a stopping criterion

    return dict(M=M, R=R, P_s=P_s, Pg_s=Pg_s, col_s=col_s, ok=ok, lnP0=lnP0, h=h, nodes=nodes[:, :n_used],
                vnode=vnode[:n_used], k_stop=k_stop, done=done, fail=fail, bad_step=bad_step,
                gamma_max=gamma_max, logT_gmax=logT_gmax, n_used=n_used)


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
    radius = np.asarray(radius, float)
    st = _integrate(M_star, R_star, L_star, Teff, X, Z, alpha_mlt, tau_top=tau_top, n_tau=n_tau,
                    n_steps=n_steps, column_stop=column_stop, mass_frac_stop=mass_frac_stop,
                    radius_stop=radius_stop, atmosphere=atmosphere, opacity_cold=opacity_cold,
                    opal_set=opal_set)
    M, R, n, n_used = st["M"], st["R"], st["M"].size, st["n_used"]
    ok, fail, unfinished, bad_step = st["ok"], st["fail"], ~st["done"], st["bad_step"]
    nodes, vnode, k_stop, lnP0, h = st["nodes"], st["vnode"], st["k_stop"], st["lnP0"], st["h"]
    gamma_max, logT_gmax, P_s, col_s = st["gamma_max"], st["logT_gmax"], st["P_s"], st["col_s"]

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
