"""The templates stage on real COSMIC tracks, the real structure model and real MESA files."""

import shutil
import subprocess
import sys
from pathlib import Path

import astropy.constants as ac
import numpy as np
import pytest
import xarray as xr

import cube
from tasks.config import Config, load_preset
from tasks.runner import run

MESA_SUBSET = Path(__file__).parents[2] / "data" / "mesa" / "mesagrid_1Msun_Z0.0187_subset"
R_SUN = ac.R_sun.cgs.value


def _config(**templates) -> Config:
    d = load_preset("quick").model_dump()
    d["templates"].update(
        {
            "masses": [1.0, 15.0],
            "metallicities": [0.02],
            "snapshots_per_stage": {"MS": 4, "RGB": 2, "CHeB": 2, "EAGB": 1, "TPAGB": 1},
            "radius_points": 240,
            "chunk": 4,
        }
    )
    d["templates"].update(templates)
    return Config.model_validate(d)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    store = tmp_path_factory.mktemp("tpl") / "s.zarr"
    res = run(_config(), store, stages=["templates"]).stages["templates"]
    return store, res


def test_cube_follows_schema_and_is_complete(generated):
    store, res = generated
    ds = cube.open(store, "templates")
    cube.validate(ds, "templates")
    assert res.chunks_computed == res.chunks_total
    assert np.isfinite(ds.rho).all() and (ds.rho >= 0).all()
    # column grows monotonically inward for every model
    assert (ds.column.diff("radius") <= 0).all()
    assert set(np.unique(ds.stage.values)) <= {"MS", "RGB", "CHeB", "EAGB", "TPAGB"}


def test_the_generated_sun(generated):
    """docs/physics.md P5 solar validation, on the pipeline's own 4.57 Gyr snapshot."""
    store, _ = generated
    ds = cube.open(store, "templates").load()
    sun = ds.isel(model=int(np.argmin(np.abs(ds.age.values - 4.57e9) + 1e12 * (ds.mass_init.values != 1.0))))
    assert sun.stage.item() == "MS"
    assert 0.9 < sun.R_star.item() / R_SUN < 1.1
    assert 1.5e-7 <= sun.rho.values[-1] <= 3e-7
    depth = 1 - sun.radius.values[::-1]
    col = sun.column.values[::-1]
    d50 = np.interp(np.log(50.0), np.log(col), depth)
    d1e4 = np.interp(np.log(1e4), np.log(col), depth)
    assert 0.8e-3 <= d50 <= 1.5e-3, d50
    assert 4e-3 <= d1e4 <= 8e-3, d1e4
    v = sun.v_conv.values[::-1]
    depth_km = depth * sun.R_star.item() / 1e5
    peak = int(np.argmax(v))
    assert 1.5e5 <= v[peak] <= 3.5e5
    assert depth_km[peak] <= 200.0


def test_durations_and_giants(generated):
    store, _ = generated
    ds = cube.open(store, "templates").load()
    for m in (1.0, 15.0):
        sel = ds.where(ds.mass_init == m, drop=True)
        ms = float(sel.duration.where(sel.stage == "MS").sum())
        if m == 1.0:
            assert 9e9 <= ms <= 13e9
        else:
            assert ds.R_star.where(ds.mass_init == 15.0).max() > 500 * R_SUN


def test_adding_a_mass_recomputes_only_its_chunks(generated, tmp_path):
    store, _ = generated
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    bigger = _config(masses=[1.0, 2.0, 15.0])
    res = run(bigger, work, stages=["templates"]).stages["templates"]
    assert 0 < res.chunks_computed < res.chunks_total
    fresh = tmp_path / "fresh.zarr"
    run(bigger, fresh, stages=["templates"])
    a, b = cube.open(work, "templates").load(), cube.open(fresh, "templates").load()
    # Reused rows were computed in other batches: vectorised numpy may round the last bit
    # differently by batch composition, so rows agree to 1e-12, coordinates exactly.
    xr.testing.assert_identical(a.drop_vars(list(a.data_vars)), b.drop_vars(list(b.data_vars)))
    for v in a.data_vars:
        np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-12, atol=0)


def _mesa_config(logs: Path) -> Config:
    return _config(source="mesa", mesa_logs=[str(logs)], chunk=1)


def test_one_changed_mesa_profile_recomputes_one_chunk(tmp_path):
    logs = tmp_path / "LOGS"
    shutil.copytree(MESA_SUBSET, logs)
    store = tmp_path / "s.zarr"
    first = run(_mesa_config(logs), store, stages=["templates"]).stages["templates"]
    assert first.chunks_total == 4
    before = cube.open(store, "templates").load()
    # perturb one zone of one profile: rho there changes, nothing else does
    p = logs / "profile7.data"
    lines = p.read_text().splitlines()
    parts = lines[10].split()
    parts[4] = repr(float(parts[4]) + 0.01)  # logRho of a near-surface zone
    lines[10] = " ".join(parts)
    p.write_text("\n".join(lines) + "\n")
    second = run(_mesa_config(logs), store, stages=["templates"]).stages["templates"]
    assert second.chunks_computed == 1
    after = cube.open(store, "templates").load()
    changed = [i for i in range(4) if not np.array_equal(before.rho[i], after.rho[i])]
    assert len(changed) == 1


def test_malformed_mesa_file_is_one_error_and_nothing_is_written(tmp_path):
    logs = tmp_path / "LOGS"
    shutil.copytree(MESA_SUBSET, logs)
    store = tmp_path / "s.zarr"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"preset: quick\ntemplates:\n  source: mesa\n  mesa_logs: ['{logs}']\n  chunk: 2\n"
    )
    ok = subprocess.run(
        [sys.executable, "-m", "tasks.cli", "run", "--config", str(cfg), "--store", str(store), "--cluster", "sync", "--stages", "templates"],
        capture_output=True, text=True, timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    before = cube.open(store, "templates").load()
    p = logs / "profile4.data"
    p.write_text("\n".join(p.read_text().splitlines()[:200]) + "\n")  # truncated
    bad = subprocess.run(
        [sys.executable, "-m", "tasks.cli", "run", "--config", str(cfg), "--store", str(store), "--cluster", "sync", "--stages", "templates"],
        capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 2
    assert "profile4.data" in bad.stderr and "Traceback" not in bad.stderr
    xr.testing.assert_identical(before, cube.open(store, "templates").load())


class _Planted:
    """An object whose unpickling creates a file: proof that a cache entry was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_pickle_in_the_track_cache_is_never_executed(generated, tmp_path):
    from tasks.stages.templates import _cache_path, _track_key

    store, _ = generated
    work = tmp_path / "s.zarr"
    shutil.copytree(store, work)
    config = _config()
    path = _cache_path(work, _track_key(config, 1.0, 0.02))
    assert path.is_file() and not list(path.parent.glob("*.pkl"))
    marker = tmp_path / "executed"
    # an npz whose array is a pickled object, and a bare pickle under the cache's name
    np.savez(path, stage=np.array([_Planted(marker)], dtype=object))
    path2 = _cache_path(work, _track_key(config, 15.0, 0.02))
    import pickle

    path2.write_bytes(pickle.dumps(_Planted(marker)))
    # and the library the prepare step assembled from the tracks, which the plan reads
    from tasks.stages.templates import _library_path

    library = _library_path(work, config)
    assert library.is_file()
    np.savez(library, mass_init=np.array([_Planted(marker)], dtype=object))
    shutil.rmtree(work / "templates")  # the stage must plan again, reading the caches
    with pytest.warns(UserWarning, match="ignoring unreadable track cache"):
        run(config, work, stages=["templates"])
    assert not marker.exists()
    a, b = cube.open(store, "templates").load(), cube.open(work, "templates").load()
    xr.testing.assert_identical(a.reset_coords()[["rho", "column"]], b.reset_coords()[["rho", "column"]])


def test_a_batch_of_tracks_is_each_track_evolved_alone():
    """Tracks of one metallicity share a COSMIC call; each table is the one its mass alone gives."""
    import pandas as pd

    from catalogs.stellar.tracks import evolve_tracks
    from tasks.stages.templates import _evolve_batch

    snaps = {"MS": 3, "RGB": 2, "CHeB": 2, "EAGB": 1, "TPAGB": 1}
    extra = [(1.0, 0.004, 4.57e9), (1.0, 0.004, 5.0e9)]
    masses = [0.3, 1.0, 4.0, 15.0]
    batch = _evolve_batch(masses, 0.004, snaps, extra, 1.4e10, 0.01)
    for m, got in zip(masses, batch):
        alone = evolve_tracks([m], [0.004], snapshots_per_stage=snaps, extra_snapshots=[e for e in extra if e[0] == m],
                              t_max_yr=1.4e10, min_envelope_mass=0.01)
        pd.testing.assert_frame_equal(got, alone, check_exact=True)
        assert (got["mass_init"] == m).all() and len(got) >= 3
        assert got["is_extra"].sum() == (2 if m == 1.0 else 0)
