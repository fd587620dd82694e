"""Templates without a structure model (hot stripped E-AGB stars) are flagged, and no cube holds a NaN.

The library is the smallest that holds such a star: the 19 Msun, Z = 0.02 SSE track with
four E-AGB snapshots, whose last two (Teff 80 and 93 kK) are super-Eddington at the iron
bump. 0.1-25 Msun are there so that the population stage accepts the library.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

import cube
from catalogs.stellar.envelope import envelope_profiles
from catalogs.stellar.grid import radius_grid
from tasks.config import Config, load_preset
from tasks.runner import run, stage_status
from tasks.stages import STAGES
from tasks.stages.templates import eddington_factor

from .small_store import small_config

MESA_SUBSET = Path(__file__).parents[2] / "data" / "mesa" / "mesagrid_1Msun_Z0.0187_subset"
SNAPSHOTS = {"MS": 3, "RGB": 2, "CHeB": 2, "EAGB": 4, "TPAGB": 1}


def _config() -> Config:
    return small_config(
        dict(stars_per_population=4000, batches=4, R_points=7, z_points=4, chunk=3, population_chunk=1),
        **{
            "templates.masses": [0.1, 1.0, 19.0, 25.0],
            "templates.metallicities": [0.02],
            "templates.snapshots_per_stage": SNAPSHOTS,
            "templates.chunk": 16,
            "yields.chunk": 16,
        },
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    store = tmp_path_factory.mktemp("valid") / "s.zarr"
    summary = run(_config(), store, stages=["emissivity"])
    return store, summary


def test_hot_stripped_stars_are_marked_invalid_with_a_reason(built):
    store, summary = built
    tpl = cube.open(store, "templates").load()
    cube.validate(tpl, "templates")
    invalid = ~tpl.valid.values
    assert invalid.sum() == 2
    bad = tpl.isel(model=np.flatnonzero(invalid))
    assert (bad.mass_init.values == 19.0).all() and (bad.stage.values == "EAGB").all()
    assert (bad.Teff.values > 5e4).all()
    # below the electron-scattering limit: the old Gamma_e < 1 filter let them through
    assert (eddington_factor(bad.L_star.values, bad.M_star.values, 0.70) < 1).all()
    for r in bad.invalid_reason.values:
        assert r.startswith("super-Eddington envelope: Rosseland Gamma reaches 1.3"), r
    assert (tpl.invalid_reason.values[~invalid] == "").all()
    # invalid models hold zeros, every model is finite, valid ones have a real profile
    for v in ("rho", "v_conv", "column"):
        assert np.isfinite(tpl[v].values).all()
        assert (tpl[v].values[invalid] == 0).all()
    assert (tpl.rho.values[~invalid, -1] > 0).all()
    assert "invalid" in tpl.rho.attrs["invalid_models"]
    assert tpl.attrs["invalid_models"] == 2
    assert any(n.startswith("2 models without a hydrostatic envelope (super-Eddington envelope: 2") for n in summary.stages["templates"].notes)


def test_no_cube_downstream_holds_a_nan_and_invalid_templates_get_nothing(built):
    store, _ = built
    y = cube.open(store, "yields").load()
    pop = cube.open(store, "population").load()
    em = cube.open(store, "emissivity").load()
    for name, ds in (("yields", y), ("population", pop), ("emissivity", em)):
        cube.validate(ds, name)
        for v, arr in ds.data_vars.items():
            if arr.dtype.kind == "f":
                assert np.isfinite(arr.values).all(), (name, v)
    invalid = ~y.valid.values
    assert invalid.sum() == 2 and (pop.valid.values == y.valid.values).all()
    assert (y.luminosity.values[invalid] == 0).all()
    assert (y.luminosity.values[~invalid].max(axis=(1, 2, 3)) > 0).all()
    assert (pop.weight.values[..., invalid] == 0).all() and (pop.weight_batch.values[..., invalid] == 0).all()
    assert (pop.weight.values[..., ~invalid].sum(axis=-1) > 0).all()  # both estimators, every population
    assert (em.emissivity.values > 0).any()


def test_the_envelope_says_why(built):
    """The structure model itself: super-Eddington at the iron bump although Gamma_e < 1."""
    store, _ = built
    tpl = cube.open(store, "templates").load()
    bad = tpl.isel(model=np.flatnonzero(~tpl.valid.values))
    p = envelope_profiles(
        bad.M_star.values, bad.R_star.values, bad.L_star.values, bad.Teff.values, 0.70, 0.02, radius_grid(120, 1e-7)
    )
    assert not p.converged.any() and np.isnan(p.rho).all()
    assert (p.gamma_max > 1.2).all() and ((p.logT_gamma_max > 5.0) & (p.logT_gamma_max < 5.3)).all()
    assert all(f.startswith("super-Eddington envelope") for f in p.failure)


def test_a_stored_group_without_the_flag_is_rebuilt_by_copying(built, tmp_path):
    """A group written before the coordinate existed gets it without recomputing any chunk."""
    store, _ = built
    work = tmp_path / "w.zarr"
    shutil.copytree(store, work)
    for name in ("valid", "invalid_reason"):
        shutil.rmtree(work / "templates" / name)
    assert stage_status(STAGES["templates"], _config(), work)["chunks_stale"] > 0
    res = run(_config(), work, stages=["templates"]).stages["templates"]
    assert res.chunks_computed == 0 and res.chunks_copied == res.chunks_total
    tpl = cube.open(work, "templates").load()
    assert (~tpl.valid.values).sum() == 2


def _mesa_config(logs: Path, alpha: float) -> Config:
    d = load_preset("quick").model_dump()
    d["templates"].update(source="mesa", mesa_logs=[str(logs)], chunk=1, radius_points=120)
    d["templates"]["atmosphere"]["alpha_mlt"] = alpha
    return Config.model_validate(d)


def test_alpha_mlt_does_not_touch_a_mesa_library(tmp_path):
    logs = tmp_path / "LOGS"
    shutil.copytree(MESA_SUBSET, logs)
    store = tmp_path / "s.zarr"
    first = run(_mesa_config(logs, 1.8), store, stages=["templates"]).stages["templates"]
    assert first.chunks_computed == first.chunks_total == 4
    assert stage_status(STAGES["templates"], _mesa_config(logs, 2.2), store)["chunks_stale"] == 0
    second = run(_mesa_config(logs, 2.2), store, stages=["templates"]).stages["templates"]
    assert second.chunks_computed == 0
    tpl = cube.open(store, "templates")
    assert tpl.valid.values.all() and (tpl.invalid_reason.values == "").all()
