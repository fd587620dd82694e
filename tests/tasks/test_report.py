"""`stardiffuse report --json`: stable keys, and values that are the cubes' numbers."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cube

sys.path.insert(0, str(Path(__file__).parent / "stages"))
from test_sky import built  # noqa: E402,F401 - the module-scoped store of the sky tests

KEYS = {"key", "claim", "paper", "ours", "agrees", "note"}


def test_report_json_claims_come_from_the_cubes(built):  # noqa: F811
    store, _ = built
    r = subprocess.run([sys.executable, "-m", "tasks.cli", "report", "--store", str(store), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    claims = {c["key"]: c for c in out["claims"]}
    assert all(set(c) == KEYS for c in out["claims"])
    for scen in ("ballistic", "mirroring"):
        for k in ("nu_plane_e2_1TeV", "nu_all_sky_over_icecube_kra5", "gamma_over_lhaaso_inner", "gamma_over_lhaaso_outer",
                  "high_latitude_exceeds_igrb"):
            assert f"{k}_{scen}" in claims
    # two values checked against the cubes directly
    pop = cube.open(store, "population")
    assert claims["fraction_above_25_Msun"]["ours"] == pytest.approx(float(pop.heavy_fraction[0]), rel=1e-12)
    sed = cube.open(store, "sed").load()
    I = sed.mean_intensity.sel(region="galactic_plane", scenario="ballistic", messenger="nu")
    at_1 = np.exp(np.interp(0.0, np.log(sed.energy.values), np.log(I.values)))
    assert claims["nu_plane_e2_1TeV_ballistic"]["ours"] == pytest.approx(at_1, rel=1e-12)
    assert isinstance(claims["nu_plane_e2_1TeV_ballistic"]["agrees"], bool)


def test_knn_over_eep_is_the_ratio_of_the_two_weighted_luminosities():
    import xarray as xr

    from tasks.report import _estimator_claims

    # three templates with 1 TeV neutrino luminosities 1, 10, 100; k-NN puts weight on the giant
    w = np.zeros((2, 2, 3))
    w[:, 0] = [0.5, 0.5, 0.0]  # eep, populations thick and thin
    w[:, 1] = [0.4, 0.5, 0.1]  # knn
    pop = xr.Dataset(
        {"weight": (("population", "estimator", "model"), w)},
        coords={"component": ("population", ["thick", "thin"]), "feh_offset": ("population", [0.0, 0.0]),
                "estimator": ["eep", "knn"]},
    )
    L = np.zeros((3, 2, 2, 2))
    L[:, 0, 1, :] = np.array([1.0, 10.0, 100.0])[:, None]
    y = xr.Dataset({"luminosity": (("model", "scenario", "messenger", "energy"), L)},
                   coords={"scenario": ["ballistic", "mirroring"], "messenger": ["gamma", "nu"], "energy": [1.0, 10.0]})
    got = {c["key"]: c["ours"] for c in _estimator_claims(pop, y)}
    assert got == pytest.approx({"knn_over_eep_thick": 15.4 / 5.5, "knn_over_eep_thin": 15.4 / 5.5})


def _trend_cube(law):
    """A synthetic yields cube: MS tracks at Z = 0.02 (and a decoy at Z = 0.002) whose mirroring
    gamma-ray luminosity is L(E) = law(M, age) E^-2 TeV^-1 s^-1, so int_1^100 E L dE = law ln(100)
    exactly (trapezoid in ln E is exact for a constant integrand); plus a giant that must not count."""
    import xarray as xr

    E = 10.0 ** (np.arange(-8, 33) / 8)  # 0.1-10^4 TeV, 8 per decade, 1 and 100 TeV on the grid
    rows = []
    for z in (0.002, 0.02):
        for M in (0.1, 0.3, 0.5, 0.8, 1.0, 1.2):
            for age, dur in ((1e9, 2e9), (5e9, 6e9)):
                rows.append((M, z, age, "MS", dur, law(M, age) * (1.0 if z == 0.02 else 1e3)))
        rows.append((0.3, z, 1.3e10, "RGB", 1e9, 1e40))
    m, zz, age, stage, dur, amp = (np.array(c) for c in zip(*rows))
    L = np.zeros((len(rows), 2, 2, E.size))
    L[:, 1, 0] = amp[:, None] * E[None, :] ** -2
    L[:, 0, 0] = 1.0  # ballistic: must not enter
    return xr.Dataset(
        {"luminosity": (("model", "scenario", "messenger", "energy"), L)},
        coords={"energy": E, "scenario": ["ballistic", "mirroring"], "messenger": ["gamma", "nu"],
                "mass_init": ("model", m), "metallicity": ("model", zz), "age": ("model", age),
                "stage": ("model", stage), "duration": ("model", dur)},
    )


def test_mass_trend_claim_decreasing_and_increasing_cases():
    from tasks.report import mass_trend_claim

    # decreasing with mass: L = M^-1 at every age -> ratios exactly M^-1 relative to 1 Msun
    c = mass_trend_claim(_trend_cube(lambda M, age: 1e30 / M))
    assert set(c) == KEYS and c["key"] == "mass_trend_below_1p41"
    assert c["agrees"] is True
    assert c["ours"] == pytest.approx({"0.1": 10.0, "0.3": 1 / 0.3, "0.5": 2.0, "0.8": 1.25, "1": 1.0, "1.2": 1 / 1.2}, rel=1e-12)
    # increasing with mass, with an age dependence: duration weights (2, 6) Gyr at ages (1, 5) Gyr;
    # L = M^2 (1 + age/1 Gyr) -> mean M^2 (2*2 + 6*6)/8 = 5 M^2, ratio M^2
    c = mass_trend_claim(_trend_cube(lambda M, age: 1e30 * M**2 * (1 + age / 1e9)))
    assert c["agrees"] is False
    assert c["ours"]["0.1"] == pytest.approx(0.01, rel=1e-12)
    assert c["ours"]["1.2"] == pytest.approx(1.44, rel=1e-12)
    assert "TeV s^-1" in c["note"] and f"{5e30 * np.log(100):.3g}" in c["note"]
    # one step up breaks the trend
    c = mass_trend_claim(_trend_cube(lambda M, age: 1e30 / M * (3.0 if M == 0.8 else 1.0)))
    assert c["agrees"] is False
    # nearest library masses: asking for 0.12 Msun uses the 0.1 Msun track
    c = mass_trend_claim(_trend_cube(lambda M, age: 1e30 / M), masses=(0.12, 1.0))
    assert c["ours"]["0.12"] == pytest.approx(10.0, rel=1e-12)
