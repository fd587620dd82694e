"""Per-template gamma-ray and neutrino luminosities (docs/physics.md P2-P4, paper Eqs. 5, 10).

Ballistic (P3):  L(E) = N_nuc 8 pi^2 int_0^R b db int dE_p I_p Gamma(E_p, b) (1/sigma) dsigma/dE
Mirroring (P4):  L_mirror(E) = N_nuc 4 pi^2 R^2 int dE_p I_p <Gamma>(E_p) (1/sigma) dsigma/dE
Scenario "mirroring" = F_sur cal L_mirror + (1 - F_sur) L_ballistic for main-sequence stars
with M <= 1.41 Msun, L_ballistic otherwise; scenario "ballistic" = L_ballistic. The factor cal
scales the gamma rays only by default (``calibration_applies_to``): neutrinos cannot exceed the
black-sphere bound N_nuc 4 pi^2 R^2 int dE_p I_p (1/sigma) dsigma/dE.

L in particles TeV^-1 s^-1 (emitted into all directions). Cross sections enter as arrays so
this module does not depend on :mod:`catalogs.xsec`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

from catalogs.cr_spectrum import proton_intensity
from tasks.kernels.ballistic import gamma_efficiency, lambda_pair, lambda_pp, neutrino_efficiency
from tasks.kernels.chords import chord_columns, impact_grid
from tasks.kernels.mirroring import mirror_efficiency
from tasks.kernels.surface import KRAFT_MASS, f_B as f_B_of_mass, is_main_sequence, surface_fraction

__all__ = [
    "AU_CM",
    "TemplateLuminosity",
    "log_trapezoid_weights",
    "impact_weights",
    "ballistic_efficiency",
    "yield_matrix",
    "CALIBRATION_TARGETS",
    "calibration_vector",
    "combine_scenarios",
    "ballistic_luminosity",
    "mirror_luminosity",
    "template_luminosity",
    "flux_at_earth",
    "hawc_flux",
    "hawc_calibration_factor",
]

#: The astronomical unit in cm, exact by definition (IAU 2012 Resolution B2).
AU_CM: float = 1.495978707e13


class TemplateLuminosity(NamedTuple):
    """Result of :func:`template_luminosity`.

    L : (n_m, 2 scenario [ballistic, mirroring], 2 messenger [gamma, nu], n_E), TeV^-1 s^-1
    L_mirror : (n_m, 2 messenger, n_E), uncalibrated pure-mirroring luminosity (TeV^-1 s^-1)
    F_sur : (n_m,), surface fraction used in the mirroring scenario (0 where it does not apply)
    G_ballistic : (n_m, 2, n_p), int_0^R b db Gamma(b) in cm^2 (per messenger)
    G_mirror : (n_m, 2, n_p), direction-averaged <Gamma> (dimensionless)
    """

    L: np.ndarray
    L_mirror: np.ndarray
    F_sur: np.ndarray
    G_ballistic: np.ndarray
    G_mirror: np.ndarray


def log_trapezoid_weights(E: ArrayLike) -> np.ndarray:
    """Weights w with sum(w f(E)) = trapezoid of f(E) E in ln E (TeV), for int f dE."""
    E = np.asarray(E, dtype=float)
    u = np.log(E)
    w = np.zeros_like(E)
    du = np.diff(u)
    w[:-1] += 0.5 * du
    w[1:] += 0.5 * du
    return w * E


def _simpson_weights(n: int) -> np.ndarray:
    """Composite Simpson weights for n equally spaced nodes of unit spacing (when n is even the
    first interval, at the smallest depths where the integrand is tiny, is a trapezoid)."""
    w = np.zeros(n)
    if n < 2:
        return w
    k = 1 if n % 2 == 0 else 0
    if k:
        w[:2] += 0.5
    if n - k >= 3:
        w[k:n:2] += 2.0 / 3.0
        w[k + 1 : n : 2] += 4.0 / 3.0
        w[k] -= 1.0 / 3.0
        w[n - 1] -= 1.0 / 3.0
    return w


def impact_weights(b_depth: ArrayLike) -> np.ndarray:
    """Weights w_j with int_0^R b db G(b) = R^2 sum_j w_j G(b_j), b_j = R (1 - d_j).

    ``b_depth`` = [0, log-spaced ...] as from :func:`impact_grid`: trapezoid in d on [0, d_1],
    composite Simpson in ln d above (uniform ln d spacing required; the limb structure is
    smooth in ln d and Simpson keeps the (1 - d) d factor exact to ~1e-5).
    """
    d = np.asarray(b_depth, dtype=float)
    if d[0] != 0.0:
        raise ValueError("b_depth[0] must be 0 (b = R)")
    u = np.log(d[1:])
    du = np.diff(u)
    if not np.allclose(du, du[0], rtol=1e-8):
        raise ValueError("b_depth[1:] must be log-spaced")
    w = np.zeros_like(d)
    w[0] += 0.5 * d[1]
    w[1] += 0.5 * d[1]
    w[1:] += _simpson_weights(d.size - 1) * du[0] * d[1:]
    return w * (1.0 - d)


def ballistic_efficiency(
    T: np.ndarray, lam_pp: np.ndarray, lam_pair: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Chord efficiencies for T (n_m, n_b), lam_pp (n_p,), lam_pair (n_m,) -> 2 x (n_m, n_b, n_p)."""
    Tm = T[:, :, None]
    lg = np.broadcast_to(np.asarray(lam_pair, dtype=float), (T.shape[0],))[:, None, None]
    return gamma_efficiency(Tm, lam_pp[None, None, :], lg), neutrino_efficiency(Tm, lam_pp[None, None, :])


def yield_matrix(
    E_p: ArrayLike,
    sigma_inel: ArrayLike,
    dsigma: ArrayLike,
    intensity: ArrayLike | None = None,
    ep_weights: ArrayLike | None = None,
) -> np.ndarray:
    """K[msg, p, E] = w_p I_p(E_p) (1/sigma_inel) dsigma/dE  (cm^-2 s^-1 sr^-1 TeV^-1).

    Parameters
    ----------
    E_p : (n_p,) TeV;  sigma_inel : (n_p,) mb;  dsigma : (2, n_p, n_E) mb TeV^-1 [gamma, nu];
    intensity : (n_p,) I_p in cm^-2 s^-1 sr^-1 TeV^-1 (default :func:`proton_intensity`);
    ep_weights : (n_p,) TeV quadrature weights (default trapezoid in ln E_p).
    """
    E_p = np.asarray(E_p, dtype=float)
    sig = np.asarray(sigma_inel, dtype=float)
    ip = proton_intensity(E_p) if intensity is None else np.asarray(intensity, dtype=float)
    w = log_trapezoid_weights(E_p) if ep_weights is None else np.asarray(ep_weights, dtype=float)
    coef = np.where(sig > 0, w * ip / np.where(sig > 0, sig, 1.0), 0.0)
    return coef[None, :, None] * np.asarray(dsigma, dtype=float)


#: Messengers a calibration factor may scale (``mirroring.calibration_applies_to``).
CALIBRATION_TARGETS: tuple[str, str] = ("gamma", "both")


def calibration_vector(calibration: float, applies_to: str = "gamma") -> np.ndarray:
    """Scale factor per messenger [gamma, nu] for L_mirror.

    ``applies_to = "gamma"`` scales the gamma rays only: the neutrinos keep the physical model,
    which cannot exceed the black-sphere bound (every proton reaching the star interacts once).
    ``"both"`` scales both messengers (the paper's literal reading).
    """
    if applies_to not in CALIBRATION_TARGETS:
        raise ValueError(f"calibration_applies_to must be one of {CALIBRATION_TARGETS}, got {applies_to!r}")
    return np.array([calibration, calibration if applies_to == "both" else 1.0])


def combine_scenarios(
    L_ballistic: ArrayLike,
    L_mirror: ArrayLike,
    F_sur: ArrayLike,
    calibration: float = 1.0,
    calibration_applies_to: str = "gamma",
) -> np.ndarray:
    """Mirroring scenario F_sur cal L_mirror + (1 - F_sur) L_ballistic (F_sur = 0: ballistic).

    Parameters
    ----------
    L_ballistic, L_mirror : (n_m, 2 [gamma, nu], n_E)
        TeV^-1 s^-1.
    F_sur : (n_m,)
        Surface fraction where mirroring applies.
    calibration : float
        Factor on L_mirror (dimensionless).
    calibration_applies_to : {"gamma", "both"}
        Which messengers the factor scales (:func:`calibration_vector`).

    Returns
    -------
    (n_m, 2, n_E) TeV^-1 s^-1.
    """
    f = np.asarray(F_sur, dtype=float)[:, None, None]
    cal = calibration_vector(calibration, calibration_applies_to)[None, :, None]
    return f * cal * np.asarray(L_mirror) + (1.0 - f) * np.asarray(L_ballistic)


def template_luminosity(
    radius: ArrayLike,
    rho: ArrayLike,
    v_conv: ArrayLike,
    column: ArrayLike,
    R_star: ArrayLike,
    mass_init: ArrayLike,
    age: ArrayLike,
    stage: ArrayLike,
    E_p: ArrayLike,
    sigma_inel: ArrayLike,
    dsigma: ArrayLike,
    *,
    X: ArrayLike = 0.70,
    N_nuc: float = 1.8,
    calibration: float = 1.0,
    calibration_applies_to: str = "gamma",
    pair_absorption: bool = True,
    intensity: ArrayLike | None = None,
    ep_weights: ArrayLike | None = None,
    n_b: int = 128,
    b_depth_min: float = 1.0e-12,
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
    m_kraft: float = KRAFT_MASS,
    ms_label: str = "MS",
    f_B: ArrayLike | None = None,
    F_sur: ArrayLike | None = None,
) -> TemplateLuminosity:
    """Gamma-ray and all-flavour neutrino luminosities of a batch of stellar templates.

    Parameters
    ----------
    radius : (n_r,)
        Shared radius grid r/R, ascending, 0 ... 1.
    rho, v_conv, column : (n_m, n_r)
        g cm^-3, cm s^-1, g cm^-2 (vertical, from the surface, incl. P_surf/g).
    R_star : (n_m,) cm.   mass_init : (n_m,) Msun (sets f_B, f_struct, t_sat).
    age : (n_m,) yr.   stage : (n_m,) str, main sequence = ``ms_label``.
    E_p : (n_p,) proton total energies, TeV (>= 0.1 TeV - 100 PeV, >= 10/decade).
    sigma_inel : (n_p,) mb.   dsigma : (2, n_p, n_E) mb TeV^-1, [gamma, nu (all flavour)].
    X : float or (n_m,)   hydrogen mass fraction for lambda_pair.
    N_nuc : nuclear enhancement (1.8).   calibration : scale factor applied to L_mirror in the
        mirroring scenario (HAWC fit, :func:`hawc_calibration_factor`; 1 = uncalibrated).
    calibration_applies_to : ``"gamma"`` (default: neutrinos stay within the black-sphere
        bound) or ``"both"``; see :func:`calibration_vector`.
    pair_absorption : False sets lambda_pair = inf (no pair production in the star) in both
        the ballistic and the mirroring efficiencies: the unabsorbed limit, in which the
        ballistic Gamma_gamma equals Gamma_nu.
    intensity : (n_p,) I_p, default :func:`catalogs.cr_spectrum.proton_intensity`.
    ep_weights : (n_p,) quadrature weights in TeV (default trapezoid in ln E_p).
    n_b, b_depth_min : impact-parameter grid (:func:`tasks.kernels.chords.impact_grid`).
    n_mu_b, n_gamma, n_gauss, saturation, node_tol, dark_column, include_atmosphere, u_max, u_min,
        alpha_rule, n_gauss_turn : see
        :func:`tasks.kernels.mirroring.mirror_efficiency`.
    m_kraft : mirroring applies for M <= m_kraft on the main sequence.
    f_B, F_sur : (n_m,) optional per-template values (e.g. from :mod:`tasks.kernels.surface`
        with non-default parameters); default f_B(mass_init), surface_fraction(mass_init, age)
        with the docs/physics.md parameters. Both are forced to 0 where mirroring does not apply.

    Returns
    -------
    TemplateLuminosity
        ``L`` (n_m, 2, 2, n_E) TeV^-1 s^-1 [scenario ballistic/mirroring, messenger gamma/nu],
        plus ``L_mirror`` (n_m, 2, n_E) to recalibrate without recomputing, ``F_sur`` (n_m,).
    """
    rho = np.atleast_2d(np.asarray(rho, dtype=float))
    n_m = rho.shape[0]
    R = np.asarray(R_star, dtype=float).reshape(n_m)
    m = np.asarray(mass_init, dtype=float).reshape(n_m)
    ms = is_main_sequence(np.asarray(stage).reshape(n_m), ms_label)
    xs = dict(X=X, N_nuc=N_nuc, pair_absorption=pair_absorption, intensity=intensity, ep_weights=ep_weights)
    L_b, G_b = ballistic_luminosity(radius, rho, R, E_p, sigma_inel, dsigma, n_b=n_b, b_depth_min=b_depth_min, **xs)

    # mirroring only where it can apply (MS, M <= Kraft); elsewhere L_mirror = 0
    use = ms & (m <= m_kraft)
    fb = f_B_of_mass(m, ms, m_kraft=m_kraft) if f_B is None else np.asarray(f_B, dtype=float).reshape(n_m)
    F = surface_fraction(m, age, ms, m_kraft=m_kraft) if F_sur is None else np.asarray(F_sur, dtype=float).reshape(n_m)
    L_m = np.zeros((n_m, 2, np.shape(dsigma)[-1]))
    G_m = np.zeros((n_m, 2, np.size(E_p)))
    if np.any(use):
        idx = np.flatnonzero(use)
        L_m[idx], G_m[idx] = mirror_luminosity(
            radius, rho[idx], np.atleast_2d(v_conv)[idx], np.atleast_2d(column)[idx], R[idx], fb[idx], E_p,
            sigma_inel, dsigma, n_mu_b=n_mu_b, n_gamma=n_gamma, n_gauss=n_gauss, saturation=saturation,
            node_tol=node_tol, dark_column=dark_column, include_atmosphere=include_atmosphere, u_max=u_max,
            u_min=u_min, alpha_rule=alpha_rule, n_gauss_turn=n_gauss_turn, **xs,
        )
    F = np.where(use, F, 0.0)
    L = np.stack([L_b, combine_scenarios(L_b, L_m, F, calibration, calibration_applies_to)], axis=1)
    return TemplateLuminosity(L=L, L_mirror=L_m, F_sur=F, G_ballistic=G_b, G_mirror=G_m)


def ballistic_luminosity(
    radius: ArrayLike,
    rho: ArrayLike,
    R_star: ArrayLike,
    E_p: ArrayLike,
    sigma_inel: ArrayLike,
    dsigma: ArrayLike,
    *,
    X: ArrayLike = 0.70,
    N_nuc: float = 1.8,
    pair_absorption: bool = True,
    intensity: ArrayLike | None = None,
    ep_weights: ArrayLike | None = None,
    n_b: int = 128,
    b_depth_min: float = 1.0e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Ballistic (field-free) luminosity L_ball of every template (docs/physics.md P3).

    It does not depend on the surface laws (f_B, F_sur) nor on the calibration, so the yields
    stage can keep it while those change. Each template's row is computed on its own.

    Parameters
    ----------
    radius : (n_r,) r/R.   rho : (n_m, n_r) g cm^-3.   R_star : (n_m,) cm.
    E_p, sigma_inel, dsigma, X, N_nuc, pair_absorption, intensity, ep_weights, n_b,
        b_depth_min : as in :func:`template_luminosity`.

    Returns
    -------
    L_ballistic : (n_m, 2 [gamma, nu], n_E) TeV^-1 s^-1
    G_ballistic : (n_m, 2, n_p) int_0^R b db Gamma(b) in cm^2
    """
    rho = np.atleast_2d(np.asarray(rho, dtype=float))
    n_m = rho.shape[0]
    R = np.asarray(R_star, dtype=float).reshape(n_m)
    lp = lambda_pp(sigma_inel)
    # lambda_pair = inf is exactly the unabsorbed limit (the kernels take 1/lambda_pair = 0)
    lg = np.broadcast_to(np.asarray(lambda_pair(X) if pair_absorption else np.inf, dtype=float), (n_m,))
    K = yield_matrix(E_p, sigma_inel, dsigma, intensity, ep_weights)
    # chord columns on the impact grid, then int b db via fixed weights
    d = impact_grid(n_b, b_depth_min)
    T = chord_columns(rho, R, radius, d)
    gg, gn = ballistic_efficiency(T, lp, lg)
    wb = impact_weights(d)
    G_b = (R**2)[:, None, None] * np.stack(
        [np.einsum("b,mbp->mp", wb, gg), np.einsum("b,mbp->mp", wb, gn)], axis=1
    )
    return N_nuc * 8.0 * np.pi**2 * np.einsum("mkp,kpe->mke", G_b, K), G_b


def mirror_luminosity(
    radius: ArrayLike,
    rho: ArrayLike,
    v_conv: ArrayLike,
    column: ArrayLike,
    R_star: ArrayLike,
    f_B: ArrayLike,
    E_p: ArrayLike,
    sigma_inel: ArrayLike,
    dsigma: ArrayLike,
    *,
    X: ArrayLike = 0.70,
    N_nuc: float = 1.8,
    pair_absorption: bool = True,
    intensity: ArrayLike | None = None,
    ep_weights: ArrayLike | None = None,
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
    """Uncalibrated pure-mirroring luminosity L_mirror of templates where mirroring applies (docs/physics.md P4).

    f_B enters the field B = sqrt(4 pi f_B rho) v_conv inside the trajectory integrals, so
    L_mirror is not a scaling of f_B; the calibration and F_sur only weight it afterwards
    (:func:`combine_scenarios`). Each template's row is computed on its own.

    Parameters
    ----------
    radius : (n_r,) r/R.   rho, v_conv, column : (n_m, n_r) g cm^-3, cm s^-1, g cm^-2.
    R_star : (n_m,) cm.   f_B : (n_m,) dimensionless.
    E_p, sigma_inel, dsigma, X, N_nuc, pair_absorption, intensity, ep_weights : as in
        :func:`template_luminosity`.
    n_mu_b, n_gamma, n_gauss, saturation, node_tol, dark_column, u_max, u_min, include_atmosphere,
        alpha_rule, n_gauss_turn : see :func:`tasks.kernels.mirroring.mirror_efficiency`.

    Returns
    -------
    L_mirror : (n_m, 2 [gamma, nu], n_E) TeV^-1 s^-1
    G_mirror : (n_m, 2, n_p) direction-averaged <Gamma> (dimensionless)
    """
    rho = np.atleast_2d(np.asarray(rho, dtype=float))
    n_m = rho.shape[0]
    R = np.asarray(R_star, dtype=float).reshape(n_m)
    lp = lambda_pp(sigma_inel)
    lg = np.broadcast_to(np.asarray(lambda_pair(X) if pair_absorption else np.inf, dtype=float), (n_m,))
    K = yield_matrix(E_p, sigma_inel, dsigma, intensity, ep_weights)
    mg, mn = mirror_efficiency(
        radius, rho, np.atleast_2d(v_conv), np.atleast_2d(column), R, np.asarray(f_B, dtype=float).reshape(n_m),
        E_p, lp, lg, n_mu_b=n_mu_b, n_gamma=n_gamma, n_gauss=n_gauss, saturation=saturation, node_tol=node_tol,
        dark_column=dark_column, include_atmosphere=include_atmosphere, u_max=u_max, u_min=u_min, alpha_rule=alpha_rule,
        n_gauss_turn=n_gauss_turn,
    )
    G_m = np.stack([mg, mn], axis=1)
    return N_nuc * 4.0 * np.pi**2 * (R**2)[:, None, None] * np.einsum("mkp,kpe->mke", G_m, K), G_m


def flux_at_earth(L: ArrayLike, distance: ArrayLike = AU_CM) -> np.ndarray:
    """Flux L / (4 pi d^2) in TeV^-1 cm^-2 s^-1 for L in TeV^-1 s^-1 and d in cm."""
    return np.asarray(L, dtype=float) / (4.0 * np.pi * np.asarray(distance, dtype=float) ** 2)


def hawc_flux(energy: ArrayLike, norm: float = 1.6e-12, index: float = 3.62) -> np.ndarray:
    """HAWC quiet-Sun fit dN/dE = norm (E/1 TeV)^-index (TeV^-1 cm^-2 s^-1), PRL 131, 051201."""
    return norm * np.asarray(energy, dtype=float) ** (-index)


def hawc_calibration_factor(
    energy: ArrayLike,
    L_mirror_sun_gamma: ArrayLike,
    distance_cm: float = AU_CM,
    norm: float = 1.6e-12,
    index: float = 3.62,
    e_range: tuple[float, float] = (0.5, 2.6),
    f_sur: float = 1.0,
    L_ballistic_sun_gamma: ArrayLike | None = None,
    method: str = "lsq",
    pivot: float = 1.0,
) -> float:
    """Scale factor ``cal`` that makes the Sun's model gamma-ray flux match HAWC.

    Model flux at ``distance_cm``: [f_sur cal L_mirror + (1 - f_sur) L_ballistic] / (4 pi d^2),
    i.e. the mirroring scenario of the solar template when ``f_sur = F_sur(Sun)`` and
    ``L_ballistic_sun_gamma`` are given; with the defaults (f_sur = 1, no ballistic term) the
    pure L_mirror flux is fitted. ``cal`` minimises sum_i [ln F_model(E_i) - ln F_HAWC(E_i)]^2
    over the grid energies with e_range[0] <= E_i <= e_range[1] (least squares in log space,
    equal weight per grid point; closed form geometric mean of the ratio when there is no
    ballistic term). ``method = "pivot"`` instead matches exactly at the grid energy nearest
    to ``pivot`` (TeV). A model spectrum curved over the range (the mirrored gamma-ray
    efficiency peaks at E_p ~ 3 TeV for the Sun) makes the two differ by several per cent.

    Parameters
    ----------
    energy : (n_E,) TeV.   L_mirror_sun_gamma : (n_E,) TeV^-1 s^-1 (uncalibrated).
    norm, index, e_range : HAWC fit and its energy range (TeV).

    Returns
    -------
    float
        The calibration factor (multiplies L_mirror everywhere).
    """
    E = np.asarray(energy, dtype=float)
    if method == "pivot":
        sel = np.zeros(E.shape, dtype=bool)
        sel[np.argmin(np.abs(np.log(E / pivot)))] = True
    elif method == "lsq":
        sel = (E >= e_range[0]) & (E <= e_range[1])
    else:
        raise ValueError("method must be 'lsq' or 'pivot'")
    if method == "lsq" and sel.sum() < 2:
        raise ValueError("need at least two grid energies inside e_range")
    h = np.log(hawc_flux(E[sel], norm, index))
    a = f_sur * flux_at_earth(np.asarray(L_mirror_sun_gamma, dtype=float)[sel], distance_cm)
    if np.any(a <= 0):
        raise ValueError("L_mirror must be positive in the fit range")
    if L_ballistic_sun_gamma is None or f_sur == 1.0:
        return float(np.exp(np.mean(h - np.log(a))))
    b = (1.0 - f_sur) * flux_at_earth(np.asarray(L_ballistic_sun_gamma, dtype=float)[sel], distance_cm)

    def cost(lc: float) -> float:
        return float(np.sum((np.log(np.exp(lc) * a + b) - h) ** 2))

    lc0 = float(np.mean(h - np.log(a)))
    res = minimize_scalar(cost, bracket=(lc0 - 1.0, lc0 + 1.0), tol=1e-12)
    return float(np.exp(res.x))
