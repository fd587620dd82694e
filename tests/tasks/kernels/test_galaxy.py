"""The Galaxy's density model against docs/physics.md P6's published check values and direct quadrature."""

import numpy as np
import pytest
from scipy.integrate import quad

from tasks.config import Galaxy
from tasks.kernels.galaxy import PC_CM, bulge_density, component_densities, component_mass, disk_density, young_box

G = Galaxy()


@pytest.mark.parametrize("name, published", [("bulge", 9.11e9), ("thin", 3.970e10), ("thick", 1.069e10)])
def test_component_masses_match_the_paper(name, published):
    assert component_mass(name, G) == pytest.approx(published, rel=0.01)


def test_total_mass_and_number_of_stars():
    total = sum(component_mass(c, G) for c in ("bulge", "thin", "thick"))
    assert total == pytest.approx(5.95e10, rel=0.01)
    assert total / G.mean_stellar_mass == pytest.approx(1.45e11, rel=0.01)


def _volume_integral(f, R_max=60.0, z_max=20.0):
    # Independent of component_mass's closed forms: integrate the density itself in (R, z).
    def over_z(R):
        return 2.0 * quad(lambda z: f(R, z), 0.0, z_max, points=[0.05, 0.3, 1.0], limit=200)[0]

    val = quad(lambda R: 2 * np.pi * R * over_z(R), 0.0, R_max, points=[0.05, 0.5, 2.0, 8.0], limit=200)[0]
    return val * 1e9  # kpc^3 -> pc^3


def test_densities_integrate_to_the_component_masses():
    b, t = G.bulge, G.thin
    bulge = _volume_integral(lambda R, z: bulge_density(R, z, b.rho0, b.q, b.alpha, b.r0, b.r_cut), 8.0, 8.0)
    thin = _volume_integral(lambda R, z: disk_density(R, z, t.sigma0, t.z_d, t.R_d))
    assert bulge == pytest.approx(component_mass("bulge", G), rel=2e-3)
    assert thin == pytest.approx(component_mass("thin", G), rel=2e-3)


def test_disk_density_values_and_symmetry():
    # Sigma0 / (2 z_d) at the centre, e-folds at z_d and R_d, symmetric in z
    t = G.thin
    assert disk_density(0.0, 0.0, t.sigma0, t.z_d, t.R_d) == pytest.approx(1070.0 / 600.0)
    assert disk_density(0.0, 0.3, t.sigma0, t.z_d, t.R_d) == pytest.approx(1070.0 / 600.0 / np.e)
    assert disk_density(2.43, -0.3, t.sigma0, t.z_d, t.R_d) == pytest.approx(1070.0 / 600.0 / np.e**2)


def test_young_bulge_is_five_percent_inside_its_box_only():
    R = np.array([1.0, 2.5, 2.5, 4.0])
    z = np.array([0.0, 0.1, 0.3, 0.0])
    d = component_densities(R, z, G)
    assert young_box(R, z, G.bulge).tolist() == [False, True, False, False]
    whole = d["bulge"] + d["bulge_young"]
    np.testing.assert_allclose(d["bulge_young"], [0, 0.05 * whole[1], 0, 0])
    np.testing.assert_allclose(whole, bulge_density(R, z, 101.0, 0.5, 1.8, 75.0, 2100.0))


def test_parsec_in_cm():
    assert PC_CM == pytest.approx(3.0857e18, rel=1e-4)
