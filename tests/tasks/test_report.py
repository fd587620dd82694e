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
