"""TEST ORACLE (not a product): the previous numpy implementation of the mirroring kernel.

Verbatim copy of ``trajectory_efficiencies`` and ``mirror_efficiency`` from
tasks/kernels/mirroring.py before the compiled kernel replaced them (padded, block-vectorised
numpy); node thinning, which the compiled kernel did not change, is the package's own. Kept only so
that tests can check that the fast path reproduces its numbers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tasks.kernels.mirroring import direction_grid, rigidity_column, slab_nodes, thin_nodes

__all__ = ["trajectory_efficiencies", "mirror_efficiency"]


def _asinc(z: np.ndarray) -> np.ndarray:
    """arcsin(z)/z, 1 at z = 0, for 0 <= z <= 1."""
    z = np.clip(z, 0.0, 1.0)
    zs = np.where(z > 1e-4, z, 1.0)
    return np.where(z > 1e-4, np.arcsin(zs) / zs, 1.0 + z * z / 6.0)


def trajectory_efficiencies(
    Y: np.ndarray,
    Phi: np.ndarray,
    a: ArrayLike,
    gamma: ArrayLike,
    Phi_p: ArrayLike,
    lam_pp: ArrayLike,
    lam_pair: ArrayLike,
    n_gauss: int = 4,
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

    Returns
    -------
    (Gamma_gamma, Gamma_nu) : np.ndarray, broadcast shape of the parameters and Y[..., 0].
    """
    a, gamma, Phi_p, lam_pp, lam_pair = (
        np.asarray(v, dtype=float)[..., None] for v in (a, gamma, Phi_p, lam_pp, lam_pair)
    )
    phi_eff = a * Phi_p
    phi_m = phi_eff * (1.0 - gamma)  # turning magnetic column
    mirrored = phi_m[..., 0] < Phi[..., -1]
    # delta = 1 - y = (Phi_m - Phi)/Phi_eff >= 0 above the turning point
    delta = (phi_m - Phi) / phi_eff
    d_top = delta[..., :-1]
    d_bot = np.clip(delta[..., 1:], 0.0, None)
    active = d_top > 0.0
    d_top = np.clip(d_top, 0.0, 2.0)
    dy = np.clip(d_top - d_bot, 0.0, None)
    # psi = arccos(y) from 1 - y = delta (precise near the turning point), once per node
    psi_n = 2.0 * np.arcsin(np.sqrt(0.5 * np.clip(delta, 0.0, 2.0)))
    psi_t, psi_b = psi_n[..., :-1], psi_n[..., 1:]
    s_bar = np.sin(0.5 * (psi_t + psi_b))
    s_safe = np.where(s_bar > 0, s_bar, 1.0)
    ratio = _asinc(0.5 * dy / s_safe) / s_safe  # dpsi/dy, exact for a segment
    dY = Y[..., 1:] - Y[..., :-1]
    dPhi_eff = (Phi[..., 1:] - Phi[..., :-1]) / phi_eff
    used = np.where(dPhi_eff > 0, dy / np.where(dPhi_eff > 0, dPhi_eff, 1.0), 1.0)
    dY_used = np.where(active, dY * np.minimum(used, 1.0), 0.0)
    X_seg = np.where(active, dY_used * ratio / a, 0.0)
    X_in = np.cumsum(X_seg, axis=-1) - X_seg  # at the top of each segment
    X_half = X_seg.sum(axis=-1)
    lp0 = lam_pp[..., 0]
    X_tot = np.where(mirrored, 2.0 * X_half, X_half)
    g_nu = -np.expm1(-X_tot / lp0)
    # outward leg: Gauss nodes t in (0, 1), psi = psi_b + t dpsi, X_in = X_in,top + (1 - t) X_seg
    gx, gw = np.polynomial.legendre.leggauss(n_gauss)
    t, w = 0.5 * (gx + 1.0), 0.5 * gw
    dpsi = ratio * dy
    g_sum = np.zeros(X_seg.shape)
    for tk, wk in zip(t, w):
        psi = psi_b + tk * dpsi
        # fraction of the used column above the node: (y(psi) - y_top)/dy, cancellation-free
        num = 2.0 * np.sin(0.5 * (psi_t + psi)) * np.sin(0.5 * (1.0 - tk) * dpsi)
        frac = np.where(dy > 0, num / np.where(dy > 0, dy, 1.0), 1.0 - tk)
        y_col = Y[..., :-1] + dY_used * np.minimum(frac, 1.0)
        n_z = a * np.sin(psi)
        x_in = X_in + (1.0 - tk) * X_seg
        with np.errstate(divide="ignore", over="ignore"):
            expo = -(2.0 * X_half[..., None] - x_in) / lam_pp - y_col / (np.where(n_z > 0, n_z, 0.0) * lam_pair)
        g_sum += wk * np.exp(np.where(n_z > 0, expo, -np.inf))
    g_gam = np.sum(np.where(active, X_seg * g_sum, 0.0), axis=-1) / lp0
    g_gam = np.where(mirrored, g_gam, 0.0)
    return g_gam, g_nu


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
    n_mu_b: int = 6,
    n_gamma: int = 48,
    n_gauss: int = 4,
    saturation: float = 15.0,
    include_atmosphere: bool = True,
    node_tol: float = 0.03,
    block_elements: int = 200_000,
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
        Proton total energies (TeV).
    lam_pp : array_like, shape (n_p,)
        lambda_pp(E_p) (g cm^-2).
    lam_pair : float or array_like, shape (n_m,)
        Pair-production length (g cm^-2).
    n_mu_b, n_gamma : int
        Direction nodes (:func:`direction_grid`).
    n_gauss : int
        Nodes per segment for the outward-leg integral.
    saturation : float
        A trajectory whose turning point (or, if unmirrored, the bottom of the profile) lies
        below the vertical column ``saturation * lambda_pp`` is set to Gamma_nu = 1,
        Gamma_gamma = 0 without integration: errors <= exp(-2 saturation) and
        exp(-saturation) (absolute), since X_half >= Y_m and Gamma_gamma <= exp(-X_half/lambda_pp).
    include_atmosphere : bool
        Add the field-free layer above the photosphere (column[:, -1]).
    node_tol : float
        Node thinning (:func:`thin_nodes`): cell width in ln Y; 0 = exact model.
    block_elements : int
        Work-array size (trajectories x segments) per numpy call (cache-sized blocks).

    Returns
    -------
    (G_gamma, G_nu) : np.ndarray, shape (n_m, n_p)
        Efficiencies <Gamma> in [0, 1].
    """
    rho = np.atleast_2d(np.asarray(rho, dtype=float))
    n_m = rho.shape[0]
    E_p = np.asarray(E_p, dtype=float)
    lam_pp = np.broadcast_to(np.asarray(lam_pp, dtype=float), E_p.shape)
    lam_pair = np.broadcast_to(np.asarray(lam_pair, dtype=float), (n_m,))
    Y, Phi = slab_nodes(radius, rho, v_conv, column, R_star, f_B, include_atmosphere)
    a, gam, wd = direction_grid(n_mu_b, n_gamma, 9.0)  # the u range of its time (symmetric, 9)
    phi_p = rigidity_column(E_p)
    n_d, n_p = a.size, E_p.size
    # per (m, d, p): turning magnetic column, its segment, and the column there
    phi_m = (a * (1.0 - gam))[None, :, None] * phi_p[None, None, :]
    phi_m = np.broadcast_to(phi_m, (n_m, n_d, n_p)).reshape(n_m, -1)
    k_turn = np.empty(phi_m.shape, dtype=np.intp)
    for i in range(n_m):  # searchsorted has no batched form; O(n_traj log K) per template
        k_turn[i] = np.searchsorted(Phi[i], phi_m[i], side="right")
    n_nodes = Y.shape[1]
    mirrored = k_turn < n_nodes
    # column at the turning point (lower bound: top of its segment) / at the bottom
    y_turn = np.take_along_axis(Y, np.minimum(k_turn, n_nodes - 1) - 1, axis=1)
    y_turn = np.where(mirrored, y_turn, Y[:, -1:])
    lam_e = np.broadcast_to(lam_pp[None, None, :], (n_m, n_d, n_p)).reshape(n_m, -1)
    deep = y_turn >= saturation * lam_e
    g_g = np.zeros(phi_m.shape)
    g_n = np.where(deep, 1.0, 0.0)
    # segments needed: down to the turning node (mirrored) or the whole profile
    k_need = np.where(mirrored, k_turn + 1, n_nodes)
    work = np.flatnonzero(~deep.ravel())
    if work.size:
        if node_tol > 0:
            Yt, Pt = thin_nodes(Y, Phi, node_tol)
            # thinning keeps order; needed count maps through the kept Phi values
            kt = np.empty(phi_m.shape, dtype=np.intp)
            for i in range(n_m):
                kt[i] = np.searchsorted(Pt[i], phi_m[i], side="right")
            k_need = np.where(mirrored, np.minimum(kt + 1, Pt.shape[1]), Pt.shape[1])
        else:
            Yt, Pt = Y, Phi
        m_of = np.repeat(np.arange(n_m), n_d * n_p)
        d_of = np.tile(np.repeat(np.arange(n_d), n_p), n_m)
        p_of = np.tile(np.arange(n_p), n_m * n_d)
        kn = k_need.ravel()[work]
        # geometric bins of needed segment counts keep the wasted work below ~30%
        edges = np.unique(np.concatenate([np.round(2.0 ** np.arange(1, 12, 0.5)).astype(int), [Pt.shape[1]]]))
        edges = edges[edges <= Pt.shape[1]]
        b_of = np.searchsorted(edges, kn)
        gg_flat = g_g.ravel()
        gn_flat = g_n.ravel()
        for b in np.unique(b_of):
            sel = work[b_of == b]
            kb = int(edges[b])
            step = max(1, block_elements // kb)
            for s0 in range(0, sel.size, step):
                t = sel[s0 : s0 + step]
                mi, di, pi = m_of[t], d_of[t], p_of[t]
                Yb, Pb = Yt[mi, :kb], Pt[mi, :kb]
                # rows truncated at kb: the last kept node lies below every turning point here
                gg, gn = trajectory_efficiencies(
                    Yb, Pb, a[di], gam[di], phi_p[pi], lam_pp[pi], lam_pair[mi], n_gauss=n_gauss
                )
                gg_flat[t] = gg
                gn_flat[t] = gn
        g_g = gg_flat.reshape(phi_m.shape)
        g_n = gn_flat.reshape(phi_m.shape)
    g_g = np.einsum("d,mdp->mp", wd, g_g.reshape(n_m, n_d, n_p))
    g_n = np.einsum("d,mdp->mp", wd, g_n.reshape(n_m, n_d, n_p))
    return g_g, g_n
