"""Acceptance tests of the near-surface structure model (docs/physics.md P5)."""
from pathlib import Path

import numpy as np
import pytest
from astropy import constants as c

from catalogs.stellar.envelope import convective_velocity, envelope_profiles

MESA_DIR = Path(__file__).resolve().parents[2] / "data" / "mesa"
R_SUN = c.R_sun.cgs.value
M_SUN = c.M_sun.cgs.value
L_SUN = c.L_sun.cgs.value
G = c.G.cgs.value


def radius_grid(n_points=400, depth_min=1e-7):
    """Exactly the the project grid (kept local so the test pins the definition)."""
    depth = np.concatenate([np.logspace(np.log10(depth_min), 0, n_points - 1)[::-1], [0.0]])
    return 1.0 - depth


RADIUS = radius_grid()
DEPTH = 1.0 - RADIUS


def depth_at_column(column_row, target):
    """(R - r)/R where the column profile reaches `target` g cm^-2 (log interpolation)."""
    return float(np.interp(np.log(target), np.log(column_row[::-1]), DEPTH[::-1]))


@pytest.fixture(scope="module")
def sun():
    return envelope_profiles(1.0, 6.957e10, 1.0, 5772.0, 0.70, 0.02, RADIUS)


def test_sun_photosphere_density(sun):
    assert sun.converged[0]
    assert 1.5e-7 <= sun.rho[0, -1] <= 3e-7
    assert sun.T[0, -1] == pytest.approx(5772.0, rel=1e-6)
    # column above the photosphere ~ P_surf / g (negligible radiation pressure)
    g = G * M_SUN / 6.957e10 ** 2
    assert sun.column_surf[0] == pytest.approx(sun.P_surf[0] / g, rel=0.02)
    assert sun.column[0, -1] == pytest.approx(sun.column_surf[0], rel=1e-9)


def test_sun_column_depths(sun):
    assert 0.8e-3 <= depth_at_column(sun.column[0], 50.0) <= 1.5e-3
    assert 4e-3 <= depth_at_column(sun.column[0], 1e4) <= 8e-3


def test_sun_convective_velocity_peak(sun):
    v = sun.v_conv[0]
    j = int(np.argmax(v))
    assert 1.5e5 <= v[j] <= 3.5e5
    assert DEPTH[j] * 6.957e10 <= 200e5          # within 200 km of the surface
    # the photosphere itself is radiative (Schwarzschild stable)
    assert v[-1] == 0.0


def test_sun_hydrogen_ionisation_zone_lowers_nabla_ad(sun):
    """Superadiabatic peak then nabla close to a low nabla_ad in the H ionisation zone."""
    d_km = DEPTH * 6.957e5
    zone = (d_km > 500) & (d_km < 1500)            # T ~ 1.2-1.6e4 K, H partly ionised
    assert np.all(sun.nabla[0, zone] < 0.2)
    assert np.nanmax(sun.nabla[0, d_km < 300]) > 0.4   # superadiabatic layer


def test_whole_star_defined_and_monotonic(sun):
    col = sun.column[0]
    assert np.all(np.isfinite(sun.rho[0])) and np.all(sun.rho[0] > 0)
    assert np.all(np.diff(col) <= 0)
    assert col[0] > 1e10                            # neutrino chord: black
    # the continuation holds the rest of the mass: integrate rho over the grid
    r = RADIUS * 6.957e10
    mass = np.trapezoid(4 * np.pi * r ** 2 * sun.rho[0], r)
    assert mass == pytest.approx(M_SUN, rel=0.05)


def _mesa_profile(name):
    import mesa_reader as mr

    p = mr.MesaData(str(MESA_DIR / name))
    h = p.header_data
    r = 10 ** p.logR * R_SUN
    rho = 10 ** p.logRho
    P = 10 ** p.logP
    R = h["photosphere_r"] * R_SUN
    M = h["star_mass"]
    g = G * M * M_SUN / r[0] ** 2
    col = P[0] / g + np.concatenate(
        [[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * (r[:-1] - r[1:]))])
    return dict(p=p, h=h, r=r, rho=rho, P=P, R=R, M=M, col=col, depth=1 - r / R,
                X=p.x_mass_fraction_H[0], Z=p.z_mass_fraction_metals[0])


@pytest.mark.parametrize("name", ["profile1.data", "profile5.data"])
def test_column_against_mesa(name):
    """Column vs depth against real MESA 1 Msun models (ZAMS-ish and 7.6 Gyr).

    Within 30 % for 50-1e5 g cm^-2. Between 10 and 50 g cm^-2 our column is up to
    ~45 % higher: the MESA models were built with a photospheric boundary condition
    whose P(tau=2/3) is ~35 % below that of the integrated Eddington atmosphere
    (test_mesa_simple_photosphere shows that), and that offset dominates the shallow
    column. The bound 0.5 there pins it.
    """
    m = _mesa_profile(name)
    e = envelope_profiles(m["M"], m["R"], m["h"]["photosphere_L"], m["h"]["Teff"],
                          m["X"], m["Z"], RADIUS)
    assert e.converged[0]
    mine = np.exp(np.interp(m["depth"], DEPTH[::-1], np.log(e.column[0][::-1])))
    ratio = mine / m["col"]
    deep = (m["col"] >= 50) & (m["col"] <= 1e5)
    shallow = (m["col"] >= 10) & (m["col"] < 50)
    assert np.all(np.abs(ratio[deep] - 1) < 0.30), ratio[deep].min()
    assert np.all(np.abs(ratio[shallow] - 1) < 0.50)


def test_mesa_simple_photosphere():
    """With MESA's simple_photosphere condition the photosphere matches MESA."""
    m = _mesa_profile("profile5.data")
    e = envelope_profiles(m["M"], m["R"], m["h"]["photosphere_L"], m["h"]["Teff"],
                          m["X"], m["Z"], RADIUS, atmosphere="simple")
    assert e.P_surf[0] == pytest.approx(m["P"][0], rel=0.05)
    assert e.rho[0, -1] == pytest.approx(m["rho"][0], rel=0.05)
    mine = np.exp(np.interp(m["depth"], DEPTH[::-1], np.log(e.column[0][::-1])))
    sel = (m["col"] >= 10) & (m["col"] <= 100)
    assert np.all(np.abs(mine[sel] / m["col"][sel] - 1) < 0.2)


def test_convective_velocity_on_mesa_profile():
    """MLT on a given structure: solar-like near-surface peak, zero in the radiative zone."""
    m = _mesa_profile("profile5.data")
    p = m["p"]
    L = m["h"]["photosphere_L"] * L_SUN
    v = convective_velocity(m["r"], p.mass * M_SUN, m["rho"], 10 ** p.logT, m["P"], L,
                            m["X"], m["Z"])
    near = m["depth"] < 0.05
    assert 1.5e5 <= v[near].max() <= 3.5e5
    assert m["depth"][np.argmax(v)] * m["R"] < 300e5
    # radiative interior between 0.35 and 0.6 R (below the convective envelope)
    mid = (m["r"] / m["R"] > 0.35) & (m["r"] / m["R"] < 0.6)
    assert np.all(v[mid] == 0.0)


def test_convective_velocity_with_local_luminosity_finds_the_solar_like_cz_base():
    """With L(r) from the MESA energy generation (pp + cno + 3alpha), the core is
    radiative and the convective envelope starts near 0.70 R (the Sun's is 0.713 R)."""
    m = _mesa_profile("profile5.data")
    p = m["p"]
    mass = p.mass * M_SUN
    eps = p.pp + p.cno + p.tri_alpha
    seg = 0.5 * (eps[1:] + eps[:-1]) * -np.diff(mass)
    L_r = np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])
    assert L_r[0] == pytest.approx(m["h"]["photosphere_L"] * L_SUN, rel=0.05)
    v = convective_velocity(m["r"], mass, m["rho"], 10 ** p.logT, m["P"],
                            np.maximum(L_r, 1.0), m["X"], m["Z"])
    x = m["r"] / m["R"]
    assert np.all(v[x < 0.3] == 0.0)
    base = x[(v > 0) & (x > 0.3)].min()
    assert 0.65 < base < 0.75


def test_convective_velocity_consistent_with_envelope(sun):
    """Fed our own envelope structure, convective_velocity returns our v_conv."""
    sel = (DEPTH > 1e-5) & (DEPTH < 0.05)
    r = RADIUS[sel] * 6.957e10
    v = convective_velocity(r, np.full(r.shape, M_SUN), sun.rho[0, sel], sun.T[0, sel],
                            sun.P[0, sel], L_SUN, 0.70, 0.02)
    vmax = sun.v_conv[0].max()
    assert np.max(np.abs(v - sun.v_conv[0, sel])) < 0.05 * vmax


GIANTS = {
    "red giant": (1.0, 10 * R_SUN, 50.0, 4500.0),
    "red supergiant": (15.0, 800 * R_SUN, 1e5, 3600.0),
    "hot star": (10.0, 5 * R_SUN, 5000.0, 25000.0),
}


@pytest.fixture(scope="module")
def giants():
    M, R, L, T = (np.array(v) for v in zip(*GIANTS.values()))
    return envelope_profiles(M, R, L, T, 0.70, 0.02, RADIUS)


@pytest.mark.parametrize("i,name", list(enumerate(GIANTS)))
def test_giants_converge(giants, i, name):
    assert giants.converged[i], name
    for arr in (giants.rho, giants.T, giants.P, giants.column):
        assert np.all(np.isfinite(arr[i])) and np.all(arr[i] > 0), name
    assert np.all(np.isfinite(giants.v_conv[i])) and np.all(giants.v_conv[i] >= 0)
    assert np.all(np.diff(giants.column[i]) <= 0), name
    assert np.all(np.diff(giants.P[i]) <= 0), name
    assert giants.column[i, 0] > 1e6, name          # through the centre: black to protons


def test_supergiant_envelope_mass_in_gravity(giants):
    """The red supergiant's integrated layers hold a real fraction of M: m(r) matters."""
    assert 0.05 < giants.mass_env[1] <= 0.5


def test_super_eddington_flagged():
    """L/M far above the electron-scattering Eddington limit: flagged, NaN, no garbage."""
    e = envelope_profiles([1.0, 1.0], [100 * R_SUN, R_SUN], [1e6, 1.0], [8000.0, 5772.0],
                          0.7, 0.02, RADIUS)
    assert not e.converged[0] and e.converged[1]
    assert np.all(np.isnan(e.rho[0])) and np.all(np.isnan(e.column[0]))


def test_scalar_and_vector_agree(sun):
    e = envelope_profiles(np.array([2.0, 1.0]), np.array([1.8 * R_SUN, 6.957e10]),
                          np.array([16.0, 1.0]), np.array([8900.0, 5772.0]),
                          np.array([0.7, 0.7]), np.array([0.02, 0.02]), RADIUS)
    np.testing.assert_allclose(e.rho[1], sun.rho[0], rtol=1e-10)
