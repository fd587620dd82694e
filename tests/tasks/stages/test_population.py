"""The population and emissivity stages on a real store: units, reproducibility, reprocessing, bad input."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import cube
from tasks.cluster import make_client
from tasks.config import Config
from tasks.kernels.galaxy import COMPONENTS, PC_CM, component_densities
from tasks.runner import run, stage_status
from tasks.stages import STAGES

from .small_store import tiny_config


def _config(**over) -> Config:
    return tiny_config(**over)


@pytest.fixture(scope="module")
def built(tiny_store, tiny_summary):
    """The session's tiny store (every stage of tests/data/tiny.yaml, equal to :func:`_config`) and its run."""
    return tiny_store, tiny_summary


def _copy(store, tmp_path):
    work = tmp_path / "w.zarr"
    shutil.copytree(store, work)
    return work


def test_cubes_follow_their_schemas_and_count_the_stars(built):
    store, summary = built
    assert list(summary.stages)[:5] == ["xsec", "templates", "yields", "population", "emissivity"]
    pop = cube.open(store, "population")
    cube.validate(pop, "population")
    cube.validate(cube.open(store, "emissivity"), "emissivity")
    n_pop = pop.sizes["population"]
    assert n_pop == 3 + 9  # bulge, bulge_young, thick + one thin population per R node
    assert summary.stages["population"].work == {"stars_sampled": n_pop * 4000}
    assert (pop.n_sampled.values == 4000).all()


def test_emissivity_is_density_times_mean_luminosity(built):
    store, _ = built
    e = cube.open(store, "emissivity").load()
    g = _config().galaxy
    rho = component_densities(e.R.values[:, None], e.z.values[None, :], g)
    n = np.stack([rho[c] for c in COMPONENTS], -1) / 0.41
    np.testing.assert_allclose(e.n_stars_component.values, n, rtol=1e-12)
    np.testing.assert_allclose(e.n_stars.values, n.sum(-1), rtol=1e-12)
    q_c = e.n_stars_component / PC_CM**3 * e.luminosity_mean
    np.testing.assert_allclose(e.emissivity_component, q_c.transpose(*e.emissivity_component.dims), rtol=1e-12)
    np.testing.assert_allclose(e.emissivity, e.emissivity_component.sum("component"), rtol=1e-12)
    assert np.isfinite(e.emissivity).all() and (e.emissivity >= 0).all()
    assert (e.emissivity.sel(messenger="nu") > 0).all()
    # a standard error that is real: positive where there is emission, below the mean
    err, mean = e.luminosity_mean_stderr, e.luminosity_mean
    assert ((err > 0) | (mean == 0)).all() and (err < mean).where(mean > 0, True).all()
    assert (e.emissivity_stderr <= e.emissivity).all()


def test_mean_luminosity_is_the_weights_times_the_yields(built):
    # L_bar = weights @ L(model): the product the stage does, checked with xarray's own dot
    store, _ = built
    pop = cube.open(store, "population").load()
    L = cube.open(store, "yields").luminosity.load()
    e = cube.open(store, "emissivity").load()
    thick = int(np.flatnonzero(pop.component.values.astype(str) == "thick")[0])
    direct = xr.dot(pop.weight.sel(estimator="eep").isel(population=thick), L, dim="model")
    got = e.luminosity_mean.sel(component="thick").isel(R=0, z=0)
    np.testing.assert_allclose(got.transpose(*direct.dims), direct, rtol=1e-9)
    # the thin population of each R is the one with that R's metallicity offset
    off = _config().galaxy.thin.feh_R_slope * (e.R.values - 8.5)
    thin = pop.feh_offset.values[pop.component.values.astype(str) == "thin"]
    np.testing.assert_allclose(np.sort(thin), np.sort(off), atol=1e-9)


def test_workers_and_chunkings_give_identical_cubes(built, tmp_path):
    store, _ = built
    other = _copy(store, tmp_path)
    for g in ("population", "emissivity"):
        shutil.rmtree(other / g)
        shutil.rmtree(other / "_ledger" / g)
    rechunked = _config(**{"galaxy.population_chunk": 4, "galaxy.chunk": 2})
    with make_client("local", 2) as client:
        run(rechunked, other, client=client, stages=["emissivity"])
    for g in ("population", "emissivity"):
        a = cube.open(store, g).load()
        b = cube.open(other, g).load()
        for v in a.data_vars:
            assert np.array_equal(a[v].values, b[v].values), (g, v)


def test_a_yields_change_samples_no_star(built, tmp_path):
    work = _copy(built[0], tmp_path)
    res = run(_config(**{"mirroring.f_B_high": 0.5}), work, stages=["emissivity"]).stages
    assert res["population"].chunks_computed == 0 and res["population"].work == {"stars_sampled": 0}
    assert 0 < res["yields"].chunks_computed
    assert res["emissivity"].chunks_computed == res["emissivity"].chunks_total
    before = cube.open(built[0], "emissivity").load()
    after = cube.open(work, "emissivity").load()
    sel = dict(scenario="mirroring", messenger="gamma")
    assert not np.array_equal(before.emissivity.sel(**sel), after.emissivity.sel(**sel))
    np.testing.assert_array_equal(before.emissivity.sel(scenario="ballistic"), after.emissivity.sel(scenario="ballistic"))


def test_a_thick_disk_change_resamples_the_thick_disk_only(built, tmp_path):
    work = _copy(built[0], tmp_path)
    cfg = _config(**{"galaxy.thick.age_mean": 10.0})
    assert stage_status(STAGES["population"], cfg, work)["chunks_stale"] == 1
    res = run(cfg, work, stages=["emissivity"]).stages
    assert res["population"].chunks_computed == 1 and res["population"].work == {"stars_sampled": 4000}
    a, b = cube.open(built[0], "population").load(), cube.open(work, "population").load()
    changed = [str(c) for c, x, y in zip(a.component.values, a.weight.values, b.weight.values) if not np.array_equal(x, y)]
    assert changed == ["thick"]


def test_switching_the_estimator_samples_no_star_and_uses_the_stored_knn_weights(built, tmp_path):
    work = _copy(built[0], tmp_path)
    res = run(_config(**{"galaxy.estimator": "knn"}), work, stages=["emissivity"]).stages
    assert res["population"].chunks_computed == 0 and res["population"].work == {"stars_sampled": 0}
    assert res["emissivity"].chunks_computed == res["emissivity"].chunks_total
    pop = cube.open(work, "population").load()
    assert list(pop.estimator.values) == ["eep", "knn"]
    L = cube.open(work, "yields").luminosity.load()
    thick = int(np.flatnonzero(pop.component.values.astype(str) == "thick")[0])
    got = cube.open(work, "emissivity").luminosity_mean.sel(component="thick").isel(R=0, z=0).load()
    for est, equal in (("knn", True), ("eep", False)):
        direct = xr.dot(pop.weight.sel(estimator=est).isel(population=thick), L, dim="model")
        assert np.allclose(got.transpose(*direct.dims), direct, rtol=1e-9) == equal, est


def test_a_density_change_resamples_nothing(built, tmp_path):
    work = _copy(built[0], tmp_path)
    res = run(_config(**{"galaxy.thin.R_d": 2.6}), work, stages=["emissivity"]).stages
    assert res["population"].chunks_computed == 0
    assert res["emissivity"].chunks_computed == res["emissivity"].chunks_total


def test_library_without_the_sampled_masses_is_one_error_and_nothing_is_written(tmp_path):
    store = tmp_path / "s.zarr"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "preset: quick\ntemplates:\n  masses: [1.0, 2.0]\n  metallicities: [0.02]\n"
        "  snapshots_per_stage: {MS: 2, RGB: 1, CHeB: 1, EAGB: 1, TPAGB: 1}\n"
        "galaxy:\n  stars_per_population: 1000\n  batches: 4\n"
    )
    cmd = [sys.executable, "-m", "tasks.cli", "run", "--config", str(cfg), "--store", str(store), "--cluster", "sync"]
    r = subprocess.run(cmd + ["--stages", "population"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "1-2 Msun" in r.stderr and "max_template_mass" in r.stderr
    assert not (store / "population").exists()
    # status reports every stage it can plan, and the one it cannot with its reason
    status = [sys.executable, "-m", "tasks.cli", "status", "--config", str(cfg), "--store", str(store), "--json"]
    r = subprocess.run(status, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout.strip().splitlines()[-1])["stages"]
    assert st["templates"]["chunks_stale"] == 0 and st["yields"]["status"].startswith("waiting for upstream")
    assert st["population"]["status"].startswith("cannot plan:") and "1-2 Msun" in st["population"]["status"]
    assert st["emissivity"]["status"].startswith("waiting for upstream")
    r = subprocess.run(status + ["--stages", "templates"], capture_output=True, text=True, timeout=300)
    assert list(json.loads(r.stdout.strip().splitlines()[-1])["stages"]) == ["templates"]


def test_json_summary_and_status_report_the_galaxy_stages(built, tmp_path):
    work = _copy(built[0], tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(json.loads(_config().model_dump_json())))
    r = subprocess.run(
        [sys.executable, "-m", "tasks.cli", "run", "--config", str(cfg), "--store", str(work), "--cluster", "sync", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    pop = out["stages"]["population"]
    assert pop == {"chunks_total": 12, "chunks_computed": 0, "seconds": pop["seconds"], "stars_sampled": 0}
    assert out["stages"]["emissivity"]["chunks_computed"] == 0
    st = subprocess.run(
        [sys.executable, "-m", "tasks.cli", "status", "--config", str(cfg), "--store", str(work), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    stages = json.loads(st.stdout)["stages"]
    assert stages["population"] == {"chunks_total": 12, "chunks_stale": 0}
    assert stages["emissivity"] == {"chunks_total": 3, "chunks_stale": 0}


def test_the_workers_memo_of_population_means_changes_no_bit(built):
    # A worker reads the yields cube once and computes each population's mean once, whatever
    # chunk asks for it: one chunk from a cold memo, then row by row in reverse order from a
    # warm one, must both equal batch_means of that population's weights (the cube's contract).
    from tasks.stages import emissivity as E

    store, _ = built
    payload = E.plan(_config(), store).payload
    n_R = payload.R.size
    E._YIELDS_CACHE.clear()
    E._MEANS_CACHE.clear()
    whole = E.compute(0, n_R, payload)
    rows = [E.compute(r, r + 1, payload) for r in reversed(range(n_R))][::-1]
    assert len(E._MEANS_CACHE) == np.unique(payload.index).size
    pop = cube.open(store, "population").load()
    L = cube.open(store, "yields").luminosity.transpose("model", "scenario", "messenger", "energy").values
    used = np.unique(payload.index)
    w, wb = pop.weight.sel(estimator="eep").values[used], pop.weight_batch.sel(estimator="eep").values[used]
    mean, err = E.batch_means(w, wb, L)
    where = np.searchsorted(used, payload.index)
    assert np.array_equal(whole.luminosity_mean.values, mean[where])
    assert np.array_equal(whole.luminosity_mean_stderr.values, err[where])
    for v in whole.data_vars:
        assert np.array_equal(whole[v].values, np.concatenate([r[v].values for r in rows])), v
