"""Equation of state for stellar envelopes: ideal gas + radiation + Saha ionisation.

Species (number per gram, from the mass fractions):
  H  (one stage, chi = 13.598 eV),
  He (two stages, chi = 24.587 and 54.418 eV),
  one representative low-ionisation metal "donor" standing for Na, Mg, Si, Fe
  (chi = 7.9 eV, n_donor / n_H = 1.1e-4 * (Z / 0.02), solar-scaled: Asplund et al.
  2009 Mg + Si + Fe + Na). It supplies the free electrons of cool atmospheres, where
  H is neutral. All other metal nuclei count as neutral particles of mean mass
  A_Z = 16 (their electrons are neglected: < 1 % of n_e in the envelope).

Neglected: H2 molecules (T < 4000 K), pressure ionisation, degeneracy, Coulomb
corrections, excitation. Fine for the envelopes (column < 1e8 g cm^-2) this is used for.

Thermodynamic derivatives (chi_rho, chi_T, c_V, c_P, delta, nabla_ad, Gamma_1) are
analytic: the Saha balance is differentiated with the implicit-function theorem, so the
ionisation terms of c_V (latent heat) enter nabla_ad exactly (Cox & Giuli 1968, ch. 9 and
14; Kippenhahn, Weigert & Weiss 2012, sec. 14).

Units: cgs throughout (rho g cm^-3, T K, P dyn cm^-2, energies erg g^-1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import constants as _c
from astropy import units as _u

__all__ = ["EOSState", "eos_from_rho_T", "eos_from_P_T", "ionisation_fractions",
           "mean_molecular_weight", "nabla_ad", "A_RAD", "K_B", "M_U"]

K_B = _c.k_B.cgs.value
M_U = _c.u.cgs.value
M_E = _c.m_e.cgs.value
H_PL = _c.h.cgs.value
A_RAD = (4.0 * _c.sigma_sb / _c.c).cgs.value
_EV = (1.0 * _u.eV).to(_u.erg).value

CHI_H = 13.598 * _EV
CHI_HE1 = 24.587 * _EV
CHI_HE2 = 54.418 * _EV
CHI_DONOR = 7.9 * _EV
A_H, A_HE, A_Z = 1.008, 4.0026, 16.0
DONOR_PER_H_SOLAR = 1.1e-4
Z_REF_DONOR = 0.02

_PHI0 = (2.0 * np.pi * M_E * K_B / H_PL ** 2) ** 1.5   # Phi(T) = _PHI0 T^1.5 [cm^-3]


@dataclass
class EOSState:
    """EOS result; every array broadcast to the input shape.

    Attributes
    ----------
    rho : g cm^-3.   T : K.   P : total pressure, dyn cm^-2.   P_gas : dyn cm^-2.
    x_H : H+ fraction.   y_He1, y_He2 : He+ and He++ fractions.
    mu : mean molecular weight (per free particle, electrons included), in m_u.
    chi_rho, chi_T : dlnP/dlnrho|_T and dlnP/dlnT|_rho.
    c_V, c_P : specific heats, erg g^-1 K^-1.   delta : -dlnrho/dlnT|_P.
    nabla_ad : adiabatic gradient dlnT/dlnP|_s.   gamma1 : dlnP/dlnrho|_s.
    """

    rho: np.ndarray
    T: np.ndarray
    P: np.ndarray
    P_gas: np.ndarray
    x_H: np.ndarray
    y_He1: np.ndarray
    y_He2: np.ndarray
    mu: np.ndarray
    chi_rho: np.ndarray
    chi_T: np.ndarray
    c_V: np.ndarray
    c_P: np.ndarray
    delta: np.ndarray
    nabla_ad: np.ndarray
    gamma1: np.ndarray


def _abundances(X, Z):
    """Numbers per gram: nu_H, nu_He, nu_D (donor), nu_nuc (all nuclei)."""
    X = np.asarray(X, float)
    Z = np.asarray(Z, float)
    Y = np.clip(1.0 - X - Z, 0.0, 1.0)
    nu_H = X / (A_H * M_U)
    nu_He = Y / (A_HE * M_U)
    nu_D = DONOR_PER_H_SOLAR * (Z / Z_REF_DONOR) * np.maximum(nu_H, 1e-3 / M_U)
    nu_nuc = nu_H + nu_He + Z / (A_Z * M_U)
    return nu_H, nu_He, nu_D, nu_nuc


def _saha_K(T):
    """Saha constants [cm^-3] and dlnK/dlnT for H, He I, He II, donor."""
    phi = _PHI0 * T ** 1.5
    kT = K_B * T
    out = []
    for chi, gfac in ((CHI_H, 1.0), (CHI_HE1, 4.0), (CHI_HE2, 1.0), (CHI_DONOR, 1.0)):
        out.append((gfac * phi * np.exp(-chi / kT), 1.5 + chi / kT))
    return out


def _fractions(ne, K):
    (KH, aH), (K1, a1), (K2, a2), (KD, aD) = K
    x = KH / (KH + ne)
    xd = KD / (KD + ne)
    f1 = K1 / ne
    f2 = f1 * (K2 / ne)
    D = 1.0 + f1 + f2
    return x, f1 / D, f2 / D, xd, f1, f2, D


def _solve(mode, a, T, X, Z, n_iter=40):
    """Solve the Saha electron balance.

    mode 'rho': a = rho;  n_e = rho E(n_e).
    mode 'P'  : a = P_gas; n_e = (P_gas/kT) E / (nu_nuc + E).
    E = free electrons per gram. Newton in u = ln n_e from the fully ionised upper
    bound; h(u) is increasing and convex, so the iterates decrease monotonically.
    """
    nu_H, nu_He, nu_D, nu_nuc = _abundances(X, Z)
    K = _saha_K(T)
    E_full = nu_H + 2.0 * nu_He + nu_D
    if mode == "rho":
        u = np.log(a * E_full)
    else:
        u = np.log(a / (K_B * T) * E_full / (nu_nuc + E_full))
    for _ in range(n_iter):
        ne = np.exp(u)
        x, y1, y2, xd, f1, f2, D = _fractions(ne, K)
        E = nu_H * x + nu_He * (y1 + 2.0 * y2) + nu_D * xd
        E_u = _E_u(nu_H, nu_He, nu_D, x, y1, y2, xd, f1, f2, D)
        if mode == "rho":
            h = u - np.log(a * E)
            hu = 1.0 - E_u / E
        else:
            h = u - np.log(a / (K_B * T)) - np.log(E) + np.log(nu_nuc + E)
            hu = 1.0 - E_u / E + E_u / (nu_nuc + E)
        du = h / hu
        u = u - du
        if not np.any(np.abs(du) >= 1e-11):
            break
    ne = np.exp(u)
    return ne, K, (nu_H, nu_He, nu_D, nu_nuc)


def _He_derivs(f1, f2, D, df1, df2):
    dD = df1 + df2
    return (df1 * D - f1 * dD) / D ** 2, (df2 * D - f2 * dD) / D ** 2


def _E_u(nu_H, nu_He, nu_D, x, y1, y2, xd, f1, f2, D):
    dy1, dy2 = _He_derivs(f1, f2, D, -f1, -2.0 * f2)
    return -nu_H * x * (1 - x) - nu_D * xd * (1 - xd) + nu_He * (dy1 + 2.0 * dy2)


def _state(rho, T, ne, K, nus) -> EOSState:
    nu_H, nu_He, nu_D, nu_nuc = nus
    (KH, aH), (K1, a1), (K2, a2), (KD, aD) = K
    x, y1, y2, xd, f1, f2, D = _fractions(ne, K)
    E = nu_H * x + nu_He * (y1 + 2.0 * y2) + nu_D * xd
    # partials at fixed u = ln n_e
    x_u, xd_u = -x * (1 - x), -xd * (1 - xd)
    y1_u, y2_u = _He_derivs(f1, f2, D, -f1, -2.0 * f2)
    x_t, xd_t = x * (1 - x) * aH, xd * (1 - xd) * aD
    y1_t, y2_t = _He_derivs(f1, f2, D, a1 * f1, (a1 + a2) * f2)
    E_u = nu_H * x_u + nu_He * (y1_u + 2 * y2_u) + nu_D * xd_u
    E_t = nu_H * x_t + nu_He * (y1_t + 2 * y2_t) + nu_D * xd_t
    hu = 1.0 - E_u / E                      # h = u - ln rho - ln E
    u_l = 1.0 / hu                          # du/dlnrho at fixed T
    u_t = (E_t / E) / hu                    # du/dlnT at fixed rho
    # total derivatives of the fractions
    dx_t, dxd_t = x_u * u_t + x_t, xd_u * u_t + xd_t
    dy1_t, dy2_t = y1_u * u_t + y1_t, y2_u * u_t + y2_t
    dE_l = E_u * u_l
    dE_t = nu_H * dx_t + nu_He * (dy1_t + 2 * dy2_t) + nu_D * dxd_t

    kT = K_B * T
    P_gas = rho * kT * (nu_nuc + E)
    P_rad = A_RAD * T ** 4 / 3.0
    P = P_gas + P_rad
    beta = P_gas / P
    chi_rho = beta * (1.0 + dE_l / (nu_nuc + E))
    chi_T = beta * (1.0 + dE_t / (nu_nuc + E)) + 4.0 * (1.0 - beta)
    # c_V = (1/T) de/dlnT at fixed rho; e = 3/2 kT(nu+E) + ionisation + aT^4/rho
    de_t = (1.5 * kT * (nu_nuc + E) + 1.5 * kT * dE_t
            + nu_H * CHI_H * dx_t + nu_D * CHI_DONOR * dxd_t
            + nu_He * (CHI_HE1 * dy1_t + (CHI_HE1 + CHI_HE2) * dy2_t)
            + 4.0 * A_RAD * T ** 4 / rho)
    c_V = de_t / T
    g3m1 = P * chi_T / (rho * T * c_V)
    gamma1 = chi_T * g3m1 + chi_rho
    c_P = c_V * gamma1 / chi_rho
    mu = 1.0 / (M_U * (nu_nuc + E))
    return EOSState(rho=rho, T=T, P=P, P_gas=P_gas, x_H=x, y_He1=y1, y_He2=y2, mu=mu,
                    chi_rho=chi_rho, chi_T=chi_T, c_V=c_V, c_P=c_P,
                    delta=chi_T / chi_rho, nabla_ad=g3m1 / gamma1, gamma1=gamma1)


def eos_from_rho_T(rho, T, X, Z) -> EOSState:
    """EOS at given density and temperature.

    Parameters
    ----------
    rho : array_like, g cm^-3.   T : array_like, K.   X, Z : mass fractions (broadcast).

    Returns
    -------
    EOSState
    """
    rho, T, X, Z = np.broadcast_arrays(*(np.asarray(v, float) for v in (rho, T, X, Z)))
    ne, K, nus = _solve("rho", rho, T, X, Z)
    return _state(rho, T, ne, K, nus)


def eos_from_P_T(P, T, X, Z) -> EOSState:
    """EOS at given TOTAL pressure (gas + radiation) and temperature.

    Parameters
    ----------
    P : array_like, dyn cm^-2 (total).   T : K.   X, Z : mass fractions.

    Returns
    -------
    EOSState
        rho is NaN where P <= a T^4 / 3 (no gas pressure left: radiation dominated).
    """
    P, T, X, Z = np.broadcast_arrays(*(np.asarray(v, float) for v in (P, T, X, Z)))
    P_gas = P - A_RAD * T ** 4 / 3.0
    P_gas = np.where(P_gas > 0, P_gas, np.nan)
    ne, K, nus = _solve("P", P_gas, T, X, Z)
    nu_H, nu_He, nu_D, nu_nuc = nus
    x, y1, y2, xd, *_ = _fractions(ne, K)
    E = nu_H * x + nu_He * (y1 + 2.0 * y2) + nu_D * xd
    rho = P_gas / (K_B * T * (nu_nuc + E))
    return _state(rho, T, ne, K, nus)


def ionisation_fractions(rho, T, X, Z):
    """Ionised fractions (x_H+, y_He+, y_He++) at density rho [g cm^-3] and T [K]."""
    s = eos_from_rho_T(rho, T, X, Z)
    return s.x_H, s.y_He1, s.y_He2


def mean_molecular_weight(rho, T, X, Z):
    """Mean molecular weight mu [m_u per free particle] at rho [g cm^-3], T [K]."""
    return eos_from_rho_T(rho, T, X, Z).mu


def nabla_ad(rho, T, X, Z):
    """Adiabatic gradient (dlnT/dlnP)_s, ionisation and radiation included."""
    return eos_from_rho_T(rho, T, X, Z).nabla_ad
