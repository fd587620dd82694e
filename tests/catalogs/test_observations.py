"""The observational catalogs: published numbers, units and the IGRB extrapolation."""

import astropy.units as u
import numpy as np
import pytest
from scipy.integrate import quad

from catalogs import observations as obs


def test_lhaaso_inner_value_and_units():
    t = obs.lhaaso_diffuse("inner")
    row = t[np.argmin(np.abs(t["energy"] - 50.1 * u.TeV))]
    assert row["energy"] == 50.1 * u.TeV
    assert row["intensity"].to_value("TeV-1 cm-2 s-1 sr-1") == pytest.approx(9.26e-15)
    assert t.meta["l"] == (15.0, 125.0) and "2305.05372" in t.meta["citation"]
    with pytest.raises(ValueError, match="inner"):
        obs.lhaaso_diffuse("middle")


@pytest.mark.parametrize("region, norm", [("inner", 1.00e-14), ("outer", 0.43e-14)])
def test_lhaaso_points_follow_their_published_power_law(region, norm):
    # LHAASO's own fits: norm at 50 TeV, index 2.99 (arXiv:2305.05372)
    t = obs.lhaaso_diffuse(region)
    E = t["energy"].to_value("TeV")
    sel = (E > 15) & (E < 300)
    model = norm * (E[sel] / 50.0) ** -2.99
    ratio = t["intensity"].value[sel] / model
    assert np.exp(np.mean(np.log(ratio))) == pytest.approx(1.0, abs=0.2)


def test_hawc_sun():
    assert obs.hawc_sun(1.0).to_value("TeV-1 cm-2 s-1") == pytest.approx(1.6e-12)
    assert obs.hawc_sun(2.0).value / obs.hawc_sun(1.0).value == pytest.approx(2**-3.62)


def test_icecube_galactic_plane_flavours_and_units():
    per = obs.icecube_galactic_plane("kra5", "per_flavour")
    allf = obs.icecube_galactic_plane("kra5", "all")
    assert per["energy"].unit == u.TeV and per["energy"][0].value == pytest.approx(1.01717)
    assert per["e2_flux"][0].to_value("GeV cm-2 s-1") == pytest.approx(1.39602e-7)
    np.testing.assert_allclose(allf["e2_flux"].value, 3 * per["e2_flux"].value)
    k50 = obs.icecube_galactic_plane("kra50", "per_flavour")
    assert np.all(np.diff(k50["energy"].value) > 0) and (k50["e2_flux"].value > 0).all()


def test_icecube_diffuse_table_and_power_law():
    t = obs.icecube_diffuse("per_flavour")
    assert t["upper_limit"][0] and not t["upper_limit"][3]
    assert t["e2_intensity"][3].to_value("GeV cm-2 s-1 sr-1") == pytest.approx(3.1054259733921152e-8)
    E = 100.0
    assert (obs.icecube_diffuse_powerlaw(E, "per_flavour")).to_value("GeV-1 cm-2 s-1 sr-1") == pytest.approx(1.68e-18)


def test_igrb_band_fluxes_match_the_fit():
    # the cut-off power law of model A integrated over each 1-100 GeV band reproduces the band flux
    t = obs.fermi_igrb("A")
    assert len(t) == 26 and t["energy_lo"][0].to_value("MeV") == pytest.approx(100.0)
    for row in t:
        lo, hi = row["energy_lo"].to_value("TeV"), row["energy_hi"].to_value("TeV")
        if 1e-3 < lo and hi < 0.1:
            F = quad(lambda e: obs.igrb_fit(e, "A").value, lo, hi)[0]
            assert F == pytest.approx(row["flux_band"].value, rel=0.35)


def test_igrb_extrapolation_without_absorption_is_the_power_law():
    E = np.geomspace(0.01, 100, 30)
    np.testing.assert_allclose(obs.igrb_extrapolation(E, "A", z=0.0).value, obs.igrb_fit(E, "A", cutoff=False).value, rtol=1e-12)
    assert obs.igrb_fit(1e-4, "A", cutoff=False).to_value("MeV-1 cm-2 s-1 sr-1") == pytest.approx(0.95e-7)


def test_ebl_attenuation_falls_with_energy():
    E = np.geomspace(0.01, 100, 200)
    a = obs.ebl_attenuation(E, 0.5)
    assert a[0] > 0.99 and a[-1] < 1e-10
    assert np.all(np.diff(a) <= 0)
    # beyond the table, energies are clipped: the attenuation stays at its last value
    assert obs.ebl_attenuation([1e3], 0.5)[0] == obs.ebl_attenuation([100.0], 0.5)[0]
