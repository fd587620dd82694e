"""``import stardiffuse as sd``: the public API on the session's tiny store."""

import ast
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import stardiffuse as sd

TINY = Path(__file__).parents[1] / "data" / "tiny.yaml"
ROOT = Path(__file__).parents[2]


def test_import_is_cheap_and_names_are_public():
    code = (
        "import sys, stardiffuse as sd\n"
        "heavy = ('numpy', 'xarray', 'pandas', 'zarr', 'dask', 'distributed', 'matplotlib', 'astropy', 'healpy', 'tasks', 'cube')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert r.stdout.strip() == "[]"
    for name in sd.__all__:
        assert getattr(sd, name) is not None, name
        if callable(getattr(sd, name)) and not isinstance(getattr(sd, name), type):
            assert getattr(sd, name).__doc__, name
    assert sd.STAGES == ("xsec", "templates", "yields", "population", "emissivity", "sky", "sed")
    assert issubclass(sd.StoreLockedError, sd.StoreError) and sd.ConfigError in sd.USER_ERRORS


def test_cube_exports_only_what_users_need():
    import cube

    assert set(cube.__all__) == {"open", "validate", "get_schema", "SCHEMAS", "SchemaError", "StoreError", "StoreLockedError"}


def test_cli_calls_only_the_public_api():
    tree = ast.parse((ROOT / "tasks" / "cli.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    ours = {m.split(".")[0] for m in imported} & {"tasks", "cube", "catalogs", "deployment"}
    assert not ours, f"tasks/cli.py imports {ours} besides stardiffuse"


# --- load_config ---------------------------------------------------------------------------------


def test_load_config_overrides():
    base = sd.load_config(preset="quick")
    c = sd.load_config(preset="quick", **{"mirroring.f_B_high": 0.5}, xsec={"chunk": 8}, galaxy__batches=2)
    assert c.mirroring.f_B_high == 0.5 and c.xsec.chunk == 8 and c.galaxy.batches == 2
    assert c.xsec.E_p == base.xsec.E_p  # a section mapping is merged, not replaced
    assert base.mirroring.f_B_high != 0.5  # the preset itself is untouched
    f = sd.load_config(TINY, **{"mirroring.f_B_high": 0.5})
    assert f.mirroring.f_B_high == 0.5 and f.sky.nside == 8  # the file, then the override


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"mirroring.f_B_hi": 0.5}, "mirroring.f_B_hi: unknown key"),
        ({"mirroring.f_B_high": 1.7}, "mirroring.f_B_high: Input should be less than or equal to 1"),
        ({"mirroring.f_B_high.x": 1}, "mirroring.f_B_high.x: unknown key"),
        ({"skyy.nside": 8}, "skyy.nside: unknown key"),
        ({"sky.nside": 12}, "sky.nside: Value error, nside must be a power of two"),
        ({"run__preset": 1}, "run.preset: unknown key"),
    ],
)
def test_load_config_bad_override_is_one_config_error(overrides, fragment):
    with pytest.raises(sd.ConfigError) as err:
        sd.load_config(preset="quick", **overrides)
    assert fragment in str(err.value)


def test_load_config_bad_file_and_preset(tmp_path):
    from tasks.config import with_overrides

    with pytest.raises(sd.ConfigError, match="preset: choose the preset"):
        with_overrides(sd.load_config(), {"preset": "paper"})
    with pytest.raises(sd.ConfigError, match="cannot read configuration file"):
        sd.load_config(tmp_path / "missing.yaml")
    with pytest.raises(sd.ConfigError, match="unknown preset"):
        sd.load_config(preset="fast")


# --- status --------------------------------------------------------------------------------------


def test_status_table(tiny_store):
    df = sd.status(sd.load_config(TINY), tiny_store)
    assert list(df.columns) == ["stage", "chunks_total", "chunks_stale", "upstream_stale", "status", "reason"]
    assert list(df.stage) == list(sd.STAGES)
    assert (df.chunks_stale == 0).all() and (df.status == "up to date").all() and df.reason.isna().all()
    assert all(u == [] for u in df.upstream_stale)

    changed = sd.status(sd.load_config(TINY, **{"mirroring.f_B_high": 0.5}), tiny_store).set_index("stage")
    # f_B_high changes the Sun and so its HAWC calibration, which only a run computes: the yields
    # are stale, counted when the stage runs
    assert changed.loc["yields", "status"] == "stale" and pd.isna(changed.loc["yields", "chunks_stale"])
    assert "calibration" in changed.loc["yields", "reason"] and "counted when it runs" in changed.loc["yields", "reason"]
    assert changed.loc["templates", "status"] == "up to date" and changed.loc["population", "chunks_stale"] == 0
    assert changed.loc["sky", "upstream_stale"] == ["yields", "emissivity"]
    assert changed.loc["sky", "status"] == "upstream stale"


def test_status_never_fails_as_a_whole(tmp_path):
    df = sd.status(sd.load_config(TINY), tmp_path / "empty.zarr", stages="yields").set_index("stage")
    assert list(df.index) == ["xsec", "templates", "yields"]
    assert df.loc["yields", "status"] == "waiting for upstream" and "waiting for upstream" in df.loc["yields", "reason"]
    assert pd.isna(df.loc["yields", "chunks_total"])
    assert df.loc["xsec", "chunks_stale"] == df.loc["xsec", "chunks_total"] > 0
    with pytest.raises(sd.UnknownStageError, match="skyy"):
        sd.status(sd.load_config(TINY), tmp_path / "empty.zarr", stages=["skyy"])


# --- open, open_tree, xr.open_datatree -----------------------------------------------------------


def test_open_and_open_tree(tiny_store):
    sky = sd.open(tiny_store, "sky")
    sd.validate(sky, "sky")
    assert hasattr(sky.intensity.data, "dask")
    tree = sd.open_tree(tiny_store)
    assert list(tree.children) == list(sd.STAGES)
    for g in sd.STAGES:
        ds = tree[g].to_dataset()
        assert all(hasattr(v.data, "dask") for v in ds.data_vars.values()), g
    xr.testing.assert_identical(tree["sed"].to_dataset().load(), sd.open(tiny_store, "sed").load())
    with pytest.raises(sd.StoreError, match="does not exist"):
        sd.open_tree(tiny_store.parent / "nope.zarr")
    with pytest.raises(sd.StoreError, match="no 'skyy' group"):
        sd.open(tiny_store, "skyy")


def _open_datatree(store):
    """``xr.open_datatree`` as a user calls it; fails on any warning zarr gives about the store."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", zarr.errors.ZarrUserWarning)
        return xr.open_datatree(store, engine="zarr")


def test_xr_open_datatree_sees_exactly_the_cubes(tiny_store):
    from cube.store import hierarchy_problems

    assert (tiny_store / "_ledger").is_dir() and (tiny_store / "_cache").is_dir()  # bookkeeping beside the cubes
    assert hierarchy_problems(tiny_store) == []
    tree = _open_datatree(tiny_store)
    assert sorted(tree.children) == sorted(sd.STAGES)
    np.testing.assert_array_equal(tree["sky"]["intensity"].values, sd.open(tiny_store, "sky").intensity.values)
    assert tree["yields"].attrs["hawc_calibration"] == sd.open(tiny_store, "yields").attrs["hawc_calibration"]


def test_open_datatree_during_and_after_an_interrupted_layout_change(tiny_store, tmp_path):
    """A stage being rebuilt (``_staging_*``) never shows; a store mid-swap still opens with sd.open_tree."""
    from cube import store as cs

    work = tmp_path / "s.zarr"
    shutil.copytree(tiny_store, work)
    shutil.copytree(work / "sky", work / cs.staging_name("sky"))  # a rebuild of sky under way
    cs.group_attrs_update(work, cs.staging_name("sky"), {"note": "staging"})
    cs.group_attrs_update(work, "sed", {"note": "sed updated mid-run"})  # a stage finishing mid-run
    tree = _open_datatree(work)
    assert sorted(tree.children) == sorted(sd.STAGES) and tree["sed"].attrs["note"] == "sed updated mid-run"

    cs.swap_in_staging(work, "sky")  # killed right after the swap: no consolidated metadata
    assert any("no consolidated metadata" in p for p in cs.hierarchy_problems(work))
    assert list(sd.open_tree(work).children) == list(sd.STAGES)
    sd.run(sd.load_config(TINY), work)  # the next run finishes the store
    assert cs.hierarchy_problems(work) == []
    assert sorted(_open_datatree(work).children) == sorted(sd.STAGES)


def test_store_of_an_older_version_still_opens(tiny_store, tmp_path):
    """Older runs consolidated leftover staging groups into the root: named, and left out of open_tree."""
    from cube import store as cs

    work = tmp_path / "old.zarr"
    shutil.copytree(tiny_store, work)
    shutil.copytree(work / "sed", work / cs.staging_name("sed"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(work), zarr_format=3)  # as cube.store.consolidate did before
    assert any("_staging_sed" in p for p in cs.hierarchy_problems(work))
    assert list(sd.open_tree(work).children) == list(sd.STAGES)
    assert "_staging_sed" in xr.open_datatree(work, engine="zarr").children  # opens, with the extra node


# --- report, figures, export ---------------------------------------------------------------------


def test_report_returns_the_claims_without_printing(tiny_store, capsys):
    r = sd.report(tiny_store)
    assert capsys.readouterr().out == ""
    assert r["store"] == str(tiny_store) and set(r) == {"store", "sun", "claims"}
    claims = pd.DataFrame(r["claims"]).set_index("key")
    assert {"claim", "paper", "ours", "agrees", "note"} <= set(claims.columns) and len(claims) > 5
    json.dumps(r)  # what `stardiffuse report --json` prints
    sun = sd.solar_check(tiny_store)
    assert sun == r["sun"] and sun["solar_model"] == sd.solar_index(tiny_store)
    assert sun["energy"] == [0.5, 1.0, 2.6, 10.0, 100.0]
    tpl = sd.open(tiny_store, "templates").isel(model=sd.solar_index(tiny_store))
    assert float(tpl.mass_init) == 1.0 and str(tpl.stage.values) == "MS"


def test_figures_and_export_return_the_paths_written(tiny_store, tmp_path):
    figs = sd.figures(tiny_store, tmp_path / "fig")
    assert figs and all(p.suffix == ".png" and p.stat().st_size > 0 for p in figs)
    assert sorted(figs) == sorted((tmp_path / "fig").iterdir())
    files = sd.export(tiny_store, tmp_path / "exp")
    assert tmp_path / "exp" / "sed.ecsv" in files and all(p.exists() for p in files)
    assert sorted(files) == sorted((tmp_path / "exp").iterdir())


def test_observations_are_public():
    lh = sd.observations.lhaaso_diffuse("inner")
    assert len(lh) > 0 and lh["energy"].unit == "TeV"
