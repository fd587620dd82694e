"""`stardiffuse run --sweep`: one store per value, only the chunks the key reaches recomputed."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import cube
from tasks.sweep import parse_sweep, sweep_stores

from .stages.small_store import tiny_config


def test_parse_and_name():
    assert parse_sweep("mirroring.f_B_high=0.3,0.7,1.0") == ("mirroring.f_B_high", [0.3, 0.7, 1.0])
    stores = sweep_stores(Path("out/a.zarr"), "k.x", [1, 2, 3])
    assert stores == [Path("out/a.zarr"), Path("out/a.k.x=2.zarr"), Path("out/a.k.x=3.zarr")]


def test_f_B_sweep_recomputes_only_mirrored_yields_and_downstream(tmp_path, tiny_store):
    # The sweep starts from a copy of the session's tiny store, its yields in chunks of one model
    cfg = tiny_config(**{"yields.chunk": 1})
    f = tmp_path / "c.yaml"
    f.write_text(json.dumps(json.loads(cfg.model_dump_json())))
    store = tmp_path / "s.zarr"
    shutil.copytree(tiny_store, store)
    r = subprocess.run(
        [sys.executable, "-m", "tasks.cli", "run", "--config", str(f), "--store", str(store), "--cluster", "sync",
         "--sweep", "mirroring.f_B_high=0.3,0.7,1.0", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["values"] == [0.3, 0.7, 1.0] and len(out["stores"]) == 3
    y = cube.open(store, "yields")
    mirrored = int(((y.stage == "MS") & (y.mass_init <= 1.41)).sum())
    for later in out["stores"][1:]:
        st = later["stages"]
        assert st["xsec"]["chunks_computed"] == st["templates"]["chunks_computed"] == 0
        assert st["population"]["chunks_computed"] == 0 and st["population"]["stars_sampled"] == 0
        assert st["yields"]["chunks_computed"] == mirrored < st["yields"]["chunks_total"]
        for g in ("emissivity", "sky", "sed"):
            assert st[g]["chunks_computed"] == st[g]["chunks_total"]
    # the three stores differ in the mirroring scenario only, monotonically in f_B
    stores = sweep_stores(store, "mirroring.f_B_high", [0.3, 0.7, 1.0])
    plane = [cube.open(s, "sed").mean_intensity.sel(region="galactic_plane", messenger="gamma").load() for s in stores]
    np.testing.assert_array_equal(plane[0].sel(scenario="ballistic"), plane[2].sel(scenario="ballistic"))
    m = [float(p.sel(scenario="mirroring").isel(energy=2)) for p in plane]
    assert m[0] != m[1] != m[2]
    # and figures draw the band between them
    from tasks.figures import fig9_high_latitude

    _, data = fig9_high_latitude(stores[1], band=(stores[0], stores[2]))
    lo, hi = data[("band", "mirroring")]
    assert (lo <= data["mirroring"]).all() and (hi >= data["mirroring"]).all() and (hi > lo).any()


def test_bad_sweep_is_one_clear_error(tmp_path):
    for bad, fragment in (("mirroring.f_B_hi=0.3,0.7", "unknown key"), ("mirroring.f_B_high=0.3,1.7", "less than or equal to 1"),
                          ("mirroring.f_B_high", "KEY=V1,V2")):
        r = subprocess.run([sys.executable, "-m", "tasks.cli", "run", "--preset", "quick", "--store", str(tmp_path / "s.zarr"),
                            "--cluster", "sync", "--sweep", bad], capture_output=True, text=True, timeout=600)
        assert r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "s.zarr").exists()
