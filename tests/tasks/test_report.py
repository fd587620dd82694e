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


# --- claims that explain (issue #14) -----------------------------------------------------------
from test_yields import _black_sphere_by_own_quadrature  # noqa: E402

from tasks.report import (  # noqa: E402
    _lhaaso_energies,
    _population_weight,
    _stage_shares,
    galactic_claims,
    region_mean_of_templates,
    unabsorbed_ballistic_gamma,
)


def _sed_at(store, region, scen, msg, e):
    sed = cube.open(store, "sed").load()
    I = sed.mean_intensity.sel(region=region, scenario=scen, messenger=msg).values
    return float(np.exp(np.interp(np.log(e), np.log(sed.energy.values), np.log(I))))


def test_region_path_of_the_report_reproduces_the_sed_stage(built):  # noqa: F811
    # With the stored yields as the templates' luminosities the report's path must give the sed
    # cube's numbers: same weights, same emissivity, same region quadrature.
    store, _ = built
    y = cube.open(store, "yields").load()
    sed = cube.open(store, "sed").load()
    for region, msg in (("galactic_plane", "nu"), ("lhaaso_inner", "gamma")):
        L = y.luminosity.sel(scenario="ballistic", messenger=msg).transpose("model", "energy").values
        got = region_mean_of_templates(store, region, L)
        want = sed.mean_intensity.sel(region=region, scenario="ballistic", messenger=msg).values
        np.testing.assert_allclose(got, want, rtol=1e-9)


def test_the_plane_is_a_black_sphere_galaxy_for_neutrinos(built):  # noqa: F811
    store, _ = built
    claims = {c["key"]: c for c in galactic_claims(store)}
    L_bs = _black_sphere_by_own_quadrature(store).sel(energy=1.0, method="nearest").values  # own trapezoid
    bs_plane = float(region_mean_of_templates(store, "galactic_plane", L_bs)[0])
    for scen in ("ballistic", "mirroring"):
        c = claims[f"nu_plane_over_black_sphere_{scen}"]
        assert c["ours"] == pytest.approx(_sed_at(store, "galactic_plane", scen, "nu", 1.0) / bs_plane, rel=1e-6)
        # one interaction per primary: at most the bound; stars are thick, so nearly at it
        assert 0.9 < c["ours"] <= 1 + 1e-3 and c["agrees"] is True
    assert claims["paper_nu_plane_over_black_sphere"]["ours"] == pytest.approx(1e-16 / bs_plane, rel=1e-6)
    # a black-sphere Galaxy: L_bar = N_nuc 4 pi^2 k <R^2>, so the plane scales as R_star^2
    doubled = float(region_mean_of_templates(store, "galactic_plane", 4 * L_bs)[0])
    assert doubled == pytest.approx(4 * bs_plane, rel=1e-12)


def test_unabsorbed_gamma_rays_reach_the_black_sphere_of_thick_stars(built):  # noqa: F811
    store, _ = built
    L_un = unabsorbed_ballistic_gamma(store)
    y = cube.open(store, "yields").load()
    L_abs = y.luminosity.sel(scenario="ballistic", messenger="gamma").transpose("model", "energy").values
    bound = _black_sphere_by_own_quadrature(store, "gamma").transpose("model", "energy").values
    used = (cube.open(store, "population").weight.values != 0).any(axis=0)
    assert used.any() and np.all(L_un[~used] == 0)
    ok = bound > 1e-30 * bound.max()
    ratio = np.where(ok, L_un / np.where(ok, bound, 1.0), 0.0)[used]
    # lambda_pair = inf: Gamma_gamma = Gamma_nu, which is 1 but for the limb: at the bound, not above
    assert ratio.max() <= 1 + 1e-3 and np.median(ratio[ok[used]]) > 0.95
    assert np.all(L_un[used] >= L_abs[used] * (1 - 1e-12))
    claims = {c["key"]: c for c in galactic_claims(store)}
    un, ab = claims["gamma_unabsorbed_over_lhaaso_inner"]["ours"], claims["gamma_over_lhaaso_inner_ballistic"]["ours"]
    assert un > 100 * ab  # pair absorption removes almost every gamma ray of a ballistic star


def test_gamma_over_nu_ratios(built):  # noqa: F811
    from catalogs import observations as obs

    store, _ = built
    claims = {c["key"]: c for c in galactic_claims(store)}
    lh = obs.lhaaso_diffuse("inner")
    e = np.array([12.6, 20.0, 31.6, 50.1, 79.4])  # LHAASO-KM2A inner energies in 10-100 TeV (data file)
    I_lh = np.interp(e, lh["energy"].value, lh["intensity"].value)  # at its own points: exact
    needed = np.exp(np.mean(np.log(1e-5 * e**2 * I_lh))) / 1e-16
    ours = np.exp(np.mean(np.log([x**2 * _sed_at(store, "lhaaso_inner", "ballistic", "gamma", x) for x in e])))
    ours /= _sed_at(store, "galactic_plane", "ballistic", "nu", 1.0)
    c = claims["gamma_over_nu_needed_for_paper_ballistic"]
    assert c["paper"] == pytest.approx(needed, rel=1e-9) and c["ours"] == pytest.approx(ours, rel=1e-9)


def test_lhaaso_points_outside_the_data_are_dropped(built):  # noqa: F811
    from catalogs import observations as obs

    lh = obs.lhaaso_diffuse("inner")
    np.testing.assert_array_equal(_lhaaso_energies(lh, np.logspace(-1, 3, 41)), [12.6, 20.0, 31.6, 50.1, 79.4])
    np.testing.assert_array_equal(_lhaaso_energies(lh, np.logspace(-1, 1.4, 25)), [12.6, 20.0])  # grid ends at 25 TeV
    store, _ = built
    c = {c["key"]: c for c in galactic_claims(store)}["gamma_over_lhaaso_inner_ballistic"]
    r = [_sed_at(store, "lhaaso_inner", "ballistic", "gamma", x) / y
         for x, y in zip(lh["energy"].value[:5], lh["intensity"].value[:5])]
    assert c["ours"] == pytest.approx(np.exp(np.mean(np.log(r))), rel=1e-9)


def test_stage_shares_and_population_weight_on_a_synthetic_cube():
    import xarray as xr

    w = np.array([[[1.0, 1.0, 2.0, 0.0]], [[0.0, 5.0, 0.0, 0.0]]])  # (estimator, population, model)
    pop = xr.Dataset(
        {"weight": (("estimator", "population", "model"), w)},
        coords={"estimator": ["eep", "knn"], "component": ("population", ["thin"]), "feh_offset": ("population", [0.0])},
    )
    L = np.zeros((4, 2, 2, 1))
    L[:, 0, 1, 0] = [1.0, 3.0, 1.0, np.nan]  # ballistic nu at 1 TeV; a template without a profile
    y = xr.Dataset({"luminosity": (("model", "scenario", "messenger", "energy"), L)},
                   coords={"scenario": ["ballistic", "mirroring"], "messenger": ["gamma", "nu"], "energy": [1.0],
                           "stage": ("model", ["MS", "RGB", "MS", "CHeB"])})
    # eep: w L = 1, 3, 2, 0 -> MS 3/6, RGB 3/6; knn: all RGB
    assert _stage_shares(pop, y) == {"MS": 0.5, "RGB": 0.5, "CHeB": 0.0, "EAGB": 0.0, "TPAGB": 0.0}
    assert _stage_shares(pop, y, "knn")["RGB"] == 1.0
    np.testing.assert_array_equal(_population_weight(pop.isel(estimator=0, drop=True)).values, w[0])
    assert _population_weight(pop).dims == ("population", "model")


def test_stage_shares_on_the_store(built):  # noqa: F811
    store, _ = built
    claims = {c["key"]: c for c in galactic_claims(store)}
    shares = [claims[f"nu_stage_share_{s}"]["ours"] for s in ("MS", "RGB", "CHeB", "EAGB", "TPAGB")]
    assert sum(shares) == pytest.approx(1.0, rel=1e-12) and min(shares) >= 0
