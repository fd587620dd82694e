"""TEST FIXTURE (not a product): a simple solar-like template for the kernel tests.

Structure: the real MESA profile of the 1 Msun, Z = 0.0187 mesagrid track at 3.4 Gyr
(tests/data/mesa/mesagrid_1Msun_Z0.0187_subset/profile3.data, MIT), radii scaled to
R_sun and given age 4.57 Gyr. ASSUMED convective velocity (the profile has no conv_vel):
v_conv = 2 km/s at the photosphere, growing inward as (rho/rho_ph)^(-1/3) (constant MLT flux
rho v^3), zero below r/R = 0.713 (base of the solar convection zone). The lead re-runs the
Sun checks on the generated templates.
"""

from __future__ import annotations

from pathlib import Path

import astropy.constants as ac
import numpy as np

MESA_DIR = Path(__file__).resolve().parents[2] / "data" / "mesa" / "mesagrid_1Msun_Z0.0187_subset"
R_SUN = ac.R_sun.to("cm").value
M_SUN = ac.M_sun.to("g").value
G_CGS = ac.G.cgs.value


def radius_grid(n_points: int = 300, depth_min: float = 1e-7) -> np.ndarray:
    """the project radius grid (ascending, 0 ... 1)."""
    depth = np.concatenate([np.logspace(np.log10(depth_min), 0, n_points - 1)[::-1], [0.0]])
    return 1.0 - depth


def solar_template(n_points: int = 300, v_surf: float = 2.0e5, r_base: float = 0.713):
    """Return dict radius, rho, v_conv, column (1, n_r), R_star, mass_init, age, stage, X."""
    import mesa_reader as mr

    p = mr.MesaData(str(MESA_DIR / "profile3.data"))
    r = 10.0 ** p.data("logR")  # Rsun, surface first
    rho_p = 10.0 ** p.data("logRho")
    x_p = r / r[0]
    radius = radius_grid(n_points)
    # interpolate log rho in depth (profile runs surface -> centre)
    depth_p = 1.0 - x_p
    rho = np.exp(np.interp(1.0 - radius, depth_p, np.log(rho_p)))
    R = R_SUN
    g = G_CGS * M_SUN / R**2
    p_surf = 10.0 ** p.data("logP")[0]
    # vertical column from the surface, fine trapezoid on the profile then interpolated
    h = R * depth_p
    col_p = p_surf / g + np.concatenate([[0.0], np.cumsum(0.5 * (rho_p[1:] + rho_p[:-1]) * np.diff(h))])
    column = np.interp(1.0 - radius, depth_p, col_p)
    v = np.where(radius > r_base, v_surf * (rho / rho[-1]) ** (-1.0 / 3.0), 0.0)
    return dict(
        radius=radius, rho=rho[None], v_conv=v[None], column=column[None], R_star=np.array([R]),
        mass_init=np.array([1.0]), age=np.array([4.57e9]), stage=np.array(["MS"]), X=0.70,
    )
