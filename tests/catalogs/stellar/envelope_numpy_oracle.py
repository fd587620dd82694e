"""The numpy integration of the near-surface structure model that the compiled kernels replaced.

``_local_structure``, ``_atmosphere`` and the envelope loop are verbatim from
catalogs/stellar/envelope.py before the kernels (catalogs/stellar/envelope_kernel.py); the
kernels promise the same floating-point operations in the same order, so
tests/catalogs/stellar/test_envelope_kernel.py compares them exactly.
"""
import numpy as np

from catalogs.stellar.envelope import G_GRAV, L_SUN, M_SUN, SIGMA_SB
from catalogs.stellar.eos import A_RAD, eos_from_P_T
from catalogs.stellar.mlt import C_LIGHT, mlt_solve
from catalogs.stellar.opacity import rosseland_opacity


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




def integrate(M_star, R_star, L_star, Teff, X, Z, alpha_mlt=1.8, *, tau_top=1e-4, n_tau=24, n_steps=320,
              column_stop=1e8, mass_frac_stop=0.5, radius_stop=0.02, atmosphere="eddington",
              opacity_cold="ferguson", opal_set="GS98hz"):
    """The integration state ``envelope_profiles`` resamples: a dict of its arrays."""
    M, R, L, Te, Xa, Za = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, float)) for v in (M_star, R_star, L_star, Teff, X, Z)))
    M = M * M_SUN
    L = L * L_SUN
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

    return dict(Pg_s=Pg_s, col_s=col_s, ok=ok, nodes=nodes[:, :n_used], vnode=vnode[:n_used], k_stop=k_stop,
                done=done, fail=fail, bad_step=bad_step, gamma_max=gamma_max, logT_gmax=logT_gmax, n_used=n_used)
