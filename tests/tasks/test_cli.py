"""The command line as a user meets it: exit codes, one clear message, no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tasks.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_run_json_summary_and_rerun(tmp_path):
    store = tmp_path / "s.zarr"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preset: quick\nxsec:\n  E_p: {min: 1, max: 100, per_decade: 5}\n  energy: {min: 1, max: 100, per_decade: 5}\n  chunk: 4\n")
    r = _run("run", "--config", str(cfg), "--store", str(store), "--cluster", "sync", "--stages", "xsec", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["store"] == str(store)
    assert out["stages"]["xsec"]["chunks_total"] == 3
    assert out["stages"]["xsec"]["chunks_computed"] == 3
    assert set(out["stages"]) == {"xsec"}
    r = _run("run", "--config", str(cfg), "--store", str(store), "--cluster", "sync", "--stages", "xsec", "--json")
    assert json.loads(r.stdout.strip().splitlines()[-1])["stages"]["xsec"]["chunks_computed"] == 0
    st = _run("status", "--config", str(cfg), "--store", str(store), "--json")
    assert json.loads(st.stdout)["stages"]["xsec"] == {"chunks_total": 3, "chunks_stale": 0}


@pytest.mark.parametrize(
    "yaml_text, fragment",
    [
        ("xsec:\n  E_p: {min: -1, max: 10, per_decade: 5}\n", "xsec.E_p.min"),
        ("mirroring:\n  f_B_low: 1.5\n", "mirroring.f_B_low"),
        ("sky:\n  nside: 12\n", "sky.nside: Value error, nside must be a power of two"),
        ("xsec:\n  chunkz: 1\n", "xsec.chunkz: unknown key"),
        ("xsec:\n  chunk: lots\n", "xsec.chunk: Input should be a valid integer"),
        ("galaxy:\n  thin:\n    sigma0: 0\n", "galaxy.thin.sigma0: Input should be greater than 0"),
        ("galaxy:\n  bulge:\n    r0: -75\n", "galaxy.bulge.r0: Input should be greater than 0"),
        ("galaxy:\n  stars_per_population: 1001\n  batches: 4\n", "must be a multiple of batches"),
        ("mirroring:\n  calibration: -2\n", "mirroring.calibration"),
    ],
)
def test_bad_config_exits_nonzero_with_one_message(tmp_path, yaml_text, fragment):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    store = tmp_path / "s.zarr"
    r = _run("run", "--config", str(cfg), "--store", str(store))
    assert r.returncode == 2
    assert fragment in r.stderr
    assert "Traceback" not in r.stderr
    assert not store.exists()  # nothing written for a bad configuration


def test_unknown_stage_and_missing_store(tmp_path):
    r = _run("run", "--stages", "xsec,skyy", "--store", str(tmp_path / "s.zarr"), "--cluster", "sync")
    assert r.returncode == 2 and "unknown stage 'skyy'" in r.stderr and "Traceback" not in r.stderr
    r = _run("figures", "--store", str(tmp_path / "s.zarr"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_second_writer_is_refused(tmp_path):
    from cube.store import store_lock

    store = tmp_path / "s.zarr"
    with store_lock(store):
        r = _run("run", "--store", str(store), "--cluster", "sync", "--stages", "xsec")
    assert r.returncode == 2
    assert "is being written by pid" in r.stderr and "Traceback" not in r.stderr


def test_missing_mesa_directory_fails_before_anything_is_written(tmp_path):
    store = tmp_path / "s.zarr"
    cfg = tmp_path / "c.yaml"
    good = Path(__file__).parents[1] / "data" / "mesa" / "mesagrid_1Msun_Z0.0187_subset"
    cfg.write_text(
        f"preset: quick\ntemplates:\n  source: mesa\n  mesa_logs: ['{good}', '{tmp_path / 'nope' / 'LOGS'}', '{tmp_path}']\n"
    )
    for cmd in ("run", "status"):
        r = _run(cmd, "--config", str(cfg), "--store", str(store), *(["--cluster", "sync"] if cmd == "run" else []))
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr
        assert "templates.mesa_logs[1]" in r.stderr and "not a directory" in r.stderr
        assert "templates.mesa_logs[2]" in r.stderr and "history.data" in r.stderr
        assert "mesa_logs[0]" not in r.stderr
        assert not store.exists()  # not even the xsec stage ran


def test_missing_jobqueue_file_fails_before_anything_is_written(tmp_path):
    store = tmp_path / "s.zarr"
    r = _run("run", "--preset", "quick", "--store", str(store), "--cluster", "slurm", "--jobqueue", str(tmp_path / "jq.yaml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--jobqueue" in r.stderr and "jq.yaml" in r.stderr
    assert not store.exists()
