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
