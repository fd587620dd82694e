"""The yields stage on real cross sections and generated templates: the Sun, reprocessing, workers."""

import json
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import cube
from tasks.cluster import make_client
from tasks.config import Config, load_preset
from tasks.report import solar_check
from tasks.runner import run

HAWC_1TEV = 1.6e-12  # TeV^-1 cm^-2 s^-1, HAWC PRL 131, 051201 (2023)


def _config(**over) -> Config:
    d = load_preset("quick").model_dump()
    d["xsec"] = {
        "E_p": {"min": 0.1, "max": 1.0e5, "per_decade": 10},
        "energy": {"min": 0.1, "max": 1.0e3, "per_decade": 10},
        "chunk": 16,
    }
    d["templates"].update(
        masses=[0.5, 1.0, 2.0],
        metallicities=[0.02],
        snapshots_per_stage={"MS": 2, "RGB": 1, "CHeB": 1, "EAGB": 1, "TPAGB": 1},
        radius_points=200,
        chunk=4,
    )
    d["yields"].update(chunk=1)
    for section, values in over.items():
        d[section].update(values)
    return Config.model_validate(d)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    store = tmp_path_factory.mktemp("y") / "s.zarr"
    summary = run(_config(), store, stages=["yields"])
    return store, summary


def test_cube_follows_schema(built):
    store, summary = built
    assert list(summary.stages) == ["xsec", "templates", "yields"]
    y = cube.open(store, "yields")
    cube.validate(y, "yields")
    L = y.luminosity.load()
    assert np.isfinite(L).all() and (L >= 0).all()
    assert float(L.sel(messenger="nu").sum()) > 0


def test_mirroring_only_touches_main_sequence_below_kraft(built):
    store, _ = built
    y = cube.open(store, "yields").load()
    touched = (y.stage == "MS") & (y.mass_init <= 1.41)
    diff = np.abs(y.luminosity.sel(scenario="mirroring") - y.luminosity.sel(scenario="ballistic")).max(["messenger", "energy"])
    assert (diff.where(~touched, 0) == 0).all()
    assert (diff.where(touched, 1) > 0).all()


def test_the_sun_against_hawc_and_the_black_sphere(built):
    store, _ = built
    sun = solar_check(store, energies=(0.5, 1.0, 2.6))
    i = 1  # 1 TeV
    e2_hawc = HAWC_1TEV
    # ballistic falls short of HAWC by more than 3x (paper: "well below")
    assert sun["ballistic"]["gamma"][i] < e2_hawc / 3
    # The calibration solves "calibrated Sun = HAWC", so that equality tests nothing. What can be
    # wrong is the model behind it: the uncalibrated mirroring scenario and the factor are pinned
    # to the ranges docs/physics.md documents (measured 0.063 and x16.1 on the quick preset;
    # F_sur(Sun) ~ 0.04 makes the uncalibrated Sun fall short of HAWC, a 2x error leaves the range).
    assert sun["calibration_mode"] == "hawc"
    assert 0.045 < sun["ratio_uncalibrated_1TeV"] < 0.09
    assert 11.0 < sun["calibration"] < 22.0
    assert 0.03 < sun["F_sur"] < 0.05
    # one interaction per primary: neutrinos below the black-sphere bound, within 10x of it
    bs = sun["black_sphere"]["nu"][i]
    # 2.8e-11 TeV cm^-2 s^-1: the black-sphere Sun at 1 TeV as first measured here (issue #4 note); its
    # independent check is the own-quadrature bound of test_no_star_beats_its_black_sphere_bound_for_neutrinos
    assert bs == pytest.approx(2.8e-11, rel=0.25)
    assert bs / 10 < sun["ballistic"]["nu"][i] <= bs * (1 + 1e-3)


def test_changing_f_B_recomputes_only_mirrored_models(built, tmp_path):
    store, _ = built
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    y = cube.open(work, "yields")
    n_mirrored = int(((y.stage == "MS") & (y.mass_init <= 1.41)).sum())
    res = run(_config(mirroring={"f_B_high": 0.6}), work, stages=["yields"]).stages
    assert res["xsec"].chunks_computed == 0 and res["templates"].chunks_computed == 0
    assert res["yields"].chunks_computed == n_mirrored < res["yields"].chunks_total


def test_changing_the_cr_spectrum_recomputes_everything(built, tmp_path):
    store, _ = built
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    res = run(_config(cosmic_rays={"norm": 9.0e-6}), work, stages=["yields"]).stages["yields"]
    assert res.chunks_computed == res.chunks_total


def test_two_workers_equal_sync_exactly(built, tmp_path):
    store, _ = built
    other = tmp_path / "d.zarr"
    shutil.copytree(store, other)
    shutil.rmtree(other / "yields")
    shutil.rmtree(other / "_ledger" / "yields")
    for part in ("yields_ballistic", "yields_mirror"):  # so that the workers run the kernels
        shutil.rmtree(other / "_cache" / part)
    with make_client("local", 2) as client:
        res = run(_config(), other, client=client, stages=["yields"]).stages["yields"]
    assert res.chunks_computed == res.chunks_total
    a = cube.open(store, "yields").load()
    b = cube.open(other, "yields").load()
    assert np.array_equal(a.luminosity.values, b.luminosity.values)
    assert a.attrs["hawc_calibration"] == b.attrs["hawc_calibration"]


# --- cached L_ball and L_mirror (issue #17: turnaround) ---------------------------------------


@pytest.fixture(scope="module")
def one_chunk(built, tmp_path_factory):
    """The built library with every model in one yields chunk, so that a chunk mixes models
    whose f_B changes with models whose f_B does not."""
    store = tmp_path_factory.mktemp("one") / "s.zarr"
    shutil.copytree(built[0], store, ignore=shutil.ignore_patterns("yields*"))  # computed, not copied
    run(_config(yields={"chunk": 64}), store, stages=["yields"])
    return store


def _mirror_kernel_rows(monkeypatch) -> list:
    """Record how many models each call of the mirroring kernel computes for a yields chunk
    (not for the Sun's calibration, which the stage's ``prepare`` computes on its own)."""
    from tasks.kernels import luminosity
    from tasks.stages import yields

    calls, inside = [], []
    real_kernel, real_parts = luminosity.mirror_luminosity, yields.chunk_parts

    def counting(radius, rho, *args, **kwargs):
        if inside:
            calls.append(len(rho))
        return real_kernel(radius, rho, *args, **kwargs)

    def parts(*args, **kwargs):
        inside.append(True)
        try:
            return real_parts(*args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(luminosity, "mirror_luminosity", counting)
    monkeypatch.setattr(yields, "chunk_parts", parts)
    return calls


def _from_scratch(cfg: Config, store) -> np.ndarray:
    """Every model's luminosity by one uncached kernel call with the plan's calibration."""
    from tasks.stages.yields import _luminosity, plan

    p = plan(cfg, store).payload
    tpl = cube.open(store, "templates").load()
    ok = tpl.valid.values.astype(bool)
    L = np.zeros((tpl.sizes["model"], 2, 2, p.xsec["energy"].size))
    L[ok] = _luminosity(tpl.isel(model=np.flatnonzero(ok)), p.xsec, p.args, p.calibration).L
    return L


def test_a_new_f_B_reruns_the_kernel_only_where_f_B_changed(one_chunk, tmp_path, monkeypatch):
    work = tmp_path / "s.zarr"
    shutil.copytree(one_chunk, work)
    # f_B_low moves f_B between f_B_mass_low and f_B_mass_high (the 0.5 Msun models), not at
    # 1 Msun (f_B_high): the Sun, the calibration and the 1 Msun models' L_mirror stay
    cfg = _config(yields={"chunk": 64}, mirroring={"f_B_low": 0.8})
    calls = _mirror_kernel_rows(monkeypatch)
    res = run(cfg, work, stages=["yields"]).stages["yields"]
    y = cube.open(work, "yields").load()
    valid_ms = (y.stage == "MS").values & cube.open(work, "templates").valid.values.astype(bool)
    changed = valid_ms & (y.mass_init.values > 0.30) & (y.mass_init.values < 1.0)
    assert res.chunks_computed == 1 and changed.any() and (valid_ms & ~changed).any()
    assert sum(calls) == int(changed.sum())
    np.testing.assert_allclose(y.luminosity.values, _from_scratch(cfg, work), rtol=1e-12, atol=0)
    # back to the first f_B: every part is cached, the cube is the first one again
    calls.clear()
    run(_config(yields={"chunk": 64}), work, stages=["yields"])
    assert calls == []
    np.testing.assert_array_equal(cube.open(work, "yields").luminosity.values, cube.open(one_chunk, "yields").luminosity.values)


def test_a_new_calibration_only_rescales_the_cached_parts(one_chunk, tmp_path, monkeypatch):
    work = tmp_path / "s.zarr"
    shutil.copytree(one_chunk, work)
    cfg = _config(yields={"chunk": 64}, mirroring={"calibration": 7.0, "t_sat_points": [[0.1, 4.0], [1.41, 0.08]]})
    calls = _mirror_kernel_rows(monkeypatch)
    assert run(cfg, work, stages=["yields"]).stages["yields"].chunks_computed == 1
    assert calls == []  # c and F_sur weight L_mirror and L_ball: no kernel call
    np.testing.assert_allclose(cube.open(work, "yields").luminosity.values, _from_scratch(cfg, work), rtol=1e-12, atol=0)


def test_an_unreadable_cached_part_is_recomputed(one_chunk, tmp_path, monkeypatch):
    work = tmp_path / "s.zarr"
    shutil.copytree(one_chunk, work)
    parts = sorted((work / "_cache").glob("yields_*/**/*.npz"))
    assert len(parts) == 2  # one chunk: its L_ball and its L_mirror
    for f in parts:
        f.write_bytes(b"not an npz")
    cfg = _config(yields={"chunk": 64}, mirroring={"calibration": 7.0})
    calls = _mirror_kernel_rows(monkeypatch)
    run(cfg, work, stages=["yields"])
    assert sum(calls) > 0
    np.testing.assert_allclose(cube.open(work, "yields").luminosity.values, _from_scratch(cfg, work), rtol=1e-12, atol=0)


def test_report_cli_json(built):
    store, _ = built
    r = subprocess.run(
        [sys.executable, "-m", "tasks.cli", "report", "--store", str(store), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["sun"]["energy"] == [0.5, 1.0, 2.6, 10.0, 100.0]
    assert out["sun"]["calibration"] > 0


def test_uncalibrated_sun_mirroring_is_brighter_softer_and_bounded(built, tmp_path):
    store, _ = built
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    res = run(_config(mirroring={"calibration": "none"}), work, stages=["yields"]).stages["yields"]
    assert 0 < res.chunks_computed < res.chunks_total
    sun = solar_check(work, energies=(0.5, 1.0, 2.6))
    assert sun["calibration"] == 1.0
    b, m = np.array(sun["ballistic"]["gamma"]), np.array(sun["mirroring"]["gamma"])
    assert m[1] > 10 * b[1]
    slope = lambda f: np.log(f[2] / f[0]) / np.log(2.6 / 0.5)  # noqa: E731 - E^2 dN/dE slope
    assert slope(m) < slope(b)  # softer
    # one interaction per primary: no scenario beats the black sphere for neutrinos
    assert sun["mirroring"]["nu"][1] <= sun["black_sphere"]["nu"][1] * (1 + 1e-3)
    assert sun["ratio_uncalibrated_1TeV"] == pytest.approx(m[1] / HAWC_1TEV, rel=1e-3)


def test_least_squares_calibration_is_recorded(built, tmp_path):
    store, _ = built
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    run(_config(mirroring={"hawc_fit": "lsq"}), work, stages=["yields"])
    y = cube.open(work, "yields")
    pivot = cube.open(store, "yields").attrs["hawc_calibration"]
    assert y.attrs["hawc_calibration"] != pivot
    sun = solar_check(work, energies=(0.5, 1.0, 2.6))
    ratio = np.array(sun["mirroring"]["gamma"]) / np.array(sun["hawc"])
    assert np.all((ratio > 0.7) & (ratio < 1.3))


MESA_SUBSET = Path(__file__).parents[2] / "data" / "mesa" / "mesagrid_1Msun_Z0.0187_subset"


def _mesa(**mirroring) -> Config:
    cfg = _config(mirroring=mirroring)
    d = cfg.model_dump()
    d["templates"].update(source="mesa", mesa_logs=[str(MESA_SUBSET)], chunk=2)
    return Config.model_validate(d)


@pytest.fixture(scope="module")
def mesa_uncalibrated(tmp_path_factory):
    store = tmp_path_factory.mktemp("mesa") / "s.zarr"
    return store, run(_mesa(calibration="none"), store, stages=["yields"])


def test_mesa_library_without_a_sun_runs_uncalibrated(mesa_uncalibrated):
    # The shared mesagrid run is 1 Msun at Z = 0.0187: no solar template, and none needed.
    store, summary = mesa_uncalibrated
    y = cube.open(store, "yields").load()
    assert y.sizes["model"] == 4 and set(y.source.values.astype(str)) != {"generator"}
    L = y.luminosity
    assert np.isfinite(L).all() and (L.sel(messenger="nu") > 0).all()
    assert y.attrs["hawc_calibration"] == 1.0 and y.attrs["solar_model"] is None
    # main-sequence 1 Msun models are mirrored: the scenarios differ for them, not after the MS
    ms = y.stage.values.astype(str) == "MS"
    assert ms.any()
    d = (L.sel(scenario="mirroring") - L.sel(scenario="ballistic")).max(["messenger", "energy"]).values
    assert (d[ms] > 0).all() and (d[~ms] == 0).all()
    assert any("no solar template" in n for n in summary.stages["yields"].notes)


def test_mesa_library_without_a_sun_asks_for_one_in_mesa_terms(mesa_uncalibrated, tmp_path):
    from tasks.stages.yields import MissingInputError

    store, _ = mesa_uncalibrated
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    before = cube.open(work, "yields").load()
    with pytest.raises(MissingInputError) as err:
        run(_mesa(calibration="hawc"), work, stages=["yields"])
    msg = str(err.value)
    assert "templates.mesa_logs" in msg and "4.57 Gyr" in msg and "calibration: none" in msg
    assert "templates.masses" not in msg  # no generator keys for a MESA user
    xr.testing.assert_identical(before, cube.open(work, "yields").load())


def test_a_fixed_calibration_factor_scales_only_the_mirrored_part(mesa_uncalibrated, tmp_path):
    store, _ = mesa_uncalibrated
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    res = run(_mesa(calibration=3.0), work, stages=["yields"]).stages["yields"]
    a = cube.open(store, "yields").load().luminosity
    b = cube.open(work, "yields").load().luminosity
    ms = a.stage.values.astype(str) == "MS"
    assert res.chunks_computed == int(ms.sum()) < res.chunks_total  # yields chunks of one model
    assert cube.open(work, "yields").attrs["hawc_calibration_mode"] == "fixed"
    np.testing.assert_array_equal(b.sel(scenario="ballistic"), a.sel(scenario="ballistic"))
    # L = F c L_mirror + (1 - F) L_b: a larger c raises the excess F (c L_mirror - L_b) over ballistic
    def excess(L):
        L = L.sel(messenger="gamma").sel(energy=1.0, method="nearest")
        return L.sel(scenario="mirroring").values - L.sel(scenario="ballistic").values

    ex_a, ex_b = excess(a), excess(b)
    assert (ex_b[ms] > ex_a[ms]).all()


# --- neutrinos within the black-sphere bound (issue #14) ---------------------------------------
BOUND_TOL = 1e-3  # quadrature tolerance: impact-parameter weights and the direction grid (~1e-5)


def _black_sphere_by_own_quadrature(store, messenger: str = "nu") -> xr.DataArray:
    """L_bs(model, E) = N_nuc 4 pi^2 R^2 int dE_p I_p (1/sigma) dsigma_nu/dE [TeV^-1 s^-1].

    Integrated here with numpy's trapezoid in ln E_p straight from the xsec cube's arrays, not
    through ``yield_matrix`` (the code path the yields use): an error in that path or in the
    efficiencies shows up as a star above its bound.
    """
    from catalogs.cr_spectrum import proton_intensity

    xs = cube.open(store, "xsec").load()
    y = cube.open(store, "yields")
    cfg = y.attrs["config"]
    cr, n_nuc = cfg["cosmic_rays"], cfg["interactions"]["nuclear_enhancement"]
    E_p = xs.E_p.values
    I_p = proton_intensity(E_p, cr["norm"], cr["indices"], cr["breaks"], cr["norm_energy"])
    ds = xs.dsigma_dE.sel(messenger=messenger).transpose("E_p", "energy").values  # mb TeV^-1
    integrand = (I_p * E_p / xs.sigma_inel.values)[:, None] * ds  # dE_p = E_p dln E_p
    k = np.trapezoid(integrand, x=np.log(E_p), axis=0)  # cm^-2 s^-1 sr^-1 TeV^-1
    R = y.R_star.values
    return xr.DataArray(n_nuc * 4 * np.pi**2 * R[:, None] ** 2 * k[None, :], dims=("model", "energy"),
                        coords={"model": y.model.values, "energy": y.energy.values})


def _excess_over_bound(store) -> xr.DataArray:
    """max over energy of L_nu / L_bs - 1, per model and scenario (only where the bound is > 0)."""
    L = cube.open(store, "yields").luminosity.sel(messenger="nu").load()
    bound = _black_sphere_by_own_quadrature(store)
    ok = bound > 1e-30 * float(bound.max())
    return (L / bound.where(ok) - 1).max("energy")


def test_no_star_beats_its_black_sphere_bound_for_neutrinos(built):
    store, _ = built
    y = cube.open(store, "yields")
    assert y.attrs["calibration_applies_to"] == "gamma" and y.attrs["hawc_calibration"] > 2
    ex = _excess_over_bound(store)
    L = y.luminosity.sel(messenger="nu").load()
    assert np.isfinite(L).all()  # every template is checked, none skipped
    assert set(y.stage.values.astype(str)) >= {"MS", "RGB", "CHeB", "EAGB", "TPAGB"}
    assert float(ex.max()) <= BOUND_TOL, ex.max(["scenario"]).values
    # and the bound is not trivially loose: thick stars are black spheres, within 3% at some energy
    assert float(ex.sel(scenario="ballistic").max()) > -0.03


def test_calibrating_both_messengers_breaks_the_bound(built, tmp_path):
    store, _ = built
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    res = run(_config(mirroring={"calibration_applies_to": "both"}), work, stages=["yields"]).stages["yields"]
    y = cube.open(work, "yields")
    mirrored = int(((y.stage == "MS") & (y.mass_init <= 1.41)).sum())
    assert res.chunks_computed == mirrored  # the key is part of the mirrored models' fingerprint
    assert y.attrs["calibration_applies_to"] == "both"
    ex = _excess_over_bound(work).sel(scenario="mirroring")
    sun = int(y.attrs["solar_model"])
    # docs/physics.md P4: the literal reading puts the calibrated Sun's neutrinos ~1.6x above the bound
    assert float(ex.isel(model=sun)) > 0.3
    gamma = lambda s: cube.open(s, "yields").luminosity.sel(messenger="gamma").values  # noqa: E731
    np.testing.assert_array_equal(gamma(work), gamma(store))
    # the report says so: the Sun's neutrino claim flips
    from tasks.report import galactic_claims

    claim = lambda s: {c["key"]: c for c in galactic_claims(s)}["sun_nu_over_black_sphere_1TeV_mirroring"]  # noqa: E731
    assert claim(store)["agrees"] is True and claim(store)["ours"] <= 1 + 1e-3
    assert claim(work)["agrees"] is False and claim(work)["ours"] > 1.3


def test_the_payload_coordinates_give_every_row_as_stored(built):
    from tasks.stages.yields import compact_coords, model_rows

    store, _ = built
    tpl = cube.open(store, "templates").load()
    coords = compact_coords(tpl)
    for start, stop in ((0, 3), (5, tpl.sizes["model"])):
        rows = model_rows(coords, start, stop)
        for k, v in rows.items():
            want = tpl[k].values[start:stop]
            assert v.dtype == want.dtype and np.array_equal(v, want), k


def test_cached_parts_read_no_template_profiles_and_kernel_chunks_go_first(built, tmp_path, monkeypatch):
    from cube import store as cstore
    from tasks.stages import yields

    store, _ = built
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    # the 0.5 Msun models at f_B_low, so that a new f_B_high leaves them to rescale only
    low = {"f_B_mass_low": 0.6}
    run(_config(mirroring=low), work, stages=["yields"])
    before = cube.open(work, "yields").luminosity.values
    reads, order = [], []
    real_read, real_parts = cstore.read_rows, yields.chunk_parts
    monkeypatch.setattr(cstore, "read_rows", lambda s, g, *a, **k: reads.append(g) or real_read(s, g, *a, **k))
    monkeypatch.setattr(yields, "chunk_parts", lambda start, *a, **k: order.append(start) or real_parts(start, *a, **k))
    calls = _mirror_kernel_rows(monkeypatch)
    res = run(_config(mirroring={**low, "f_B_high": 0.55}), work, stages=["yields"]).stages["yields"]
    y = cube.open(work, "yields")
    ms, m = (y.stage == "MS").values & y.valid.values.astype(bool), y.mass_init.values
    kernel = np.flatnonzero(ms & (m > 0.6) & (m <= 1.41))
    rescaled = np.flatnonzero(ms & (m <= 0.6))
    # chunks of one model, handed out in order in sync mode: the kernel's ones first
    assert kernel.size and rescaled.size and res.chunks_computed == len(order) == kernel.size + rescaled.size
    assert sorted(order[: kernel.size]) == kernel.tolist() and sorted(order[kernel.size :]) == rescaled.tolist()
    assert sum(calls) == kernel.size and reads.count("templates") == kernel.size
    # back: every part is cached, no chunk reads the templates cube, the cube is the first one again
    reads.clear()
    run(_config(mirroring=low), work, stages=["yields"])
    assert "templates" not in reads
    np.testing.assert_array_equal(cube.open(work, "yields").luminosity.values, before)
