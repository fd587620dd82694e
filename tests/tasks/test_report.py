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
from test_yields import _black_sphere_by_own_quadrature  # noqa: E402

from tasks.report import (  # noqa: E402
    _lhaaso_energies,
    _population_weight,
    _stage_shares,
    galactic_claims,
    region_mean_of_templates,
    unabsorbed_ballistic_gamma,
)

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


# --- claims that explain (issue #14) -----------------------------------------------------------


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
    used = (_population_weight(cube.open(store, "population")).values != 0).any(axis=0)  # the default estimator
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
