"""The driver inside a Slurm allocation (run_paper.sbatch), and a request Slurm can never satisfy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import xarray as xr

import cube
from cube import store as cs

from .helpers import GUARD, JOBCOMP, ROOT, cli, config, env, jobcomp_states, jobqueue, partition, squeue, wait

pytestmark = pytest.mark.slurm


# --- 3. the driver inside an allocation: sbatch run_paper.sbatch -----------------------------------


def test_run_paper_sbatch_completes_with_the_summary(tmp_path, jobcomp):
    cfg = config(tmp_path)
    jq, name = jobqueue(tmp_path)
    driver = f"{name}-driver"
    store = tmp_path / "paper.zarr"
    run_env = env() | {
        "STARDIFFUSE_VENV": sys.prefix,
        "STARDIFFUSE_CONFIG": str(cfg),
        "STARDIFFUSE_STORE": str(store),
        "STARDIFFUSE_STAGES": "xsec,templates",
        "STARDIFFUSE_JOBQUEUE": str(jq),
        "WORKER_JOBS": "1",
    }
    # Command-line options override the script's #SBATCH lines (sized for a real site): one CPU for
    # the driver leaves one for its worker job on this two-CPU node.
    sub = subprocess.run(
        ["sbatch", "--parsable", "-J", driver, "-p", partition(), "--cpus-per-task=1", "--mem=2G",
         "-t", "00:30:00", "-o", str(tmp_path / "driver-%j.out"), str(ROOT / "deployment/slurm/run_paper.sbatch")],
        capture_output=True, text=True, env=run_env, cwd=tmp_path, check=True,
    )
    job = sub.stdout.strip().split(";")[0]
    final = wait(lambda: jobcomp_states(driver).get(job), f"end of driver job {job} in {JOBCOMP}")
    output = (tmp_path / f"driver-{job}.out").read_text()
    assert final == "COMPLETED", output[-4000:]
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["store"] == str(store)
    assert set(summary["stages"]) == {"xsec", "templates"}
    assert all(s["chunks_computed"] == s["chunks_total"] > 0 for s in summary["stages"].values())
    assert jobcomp_states(name), "the driver's worker job did not run"  # workers were jobs of their own


# --- 4. a request Slurm can never satisfy ----------------------------------------------------------


def test_unsatisfiable_request_stops_at_once_and_keeps_the_store(tmp_path):
    cfg = config(tmp_path)
    jq, name = jobqueue(tmp_path, memory="64TiB")  # more than any node of ours has
    store = tmp_path / "s.zarr"
    first = cli("run", "--config", cfg, "--store", store, "--cluster", "sync", "--stages", "xsec")
    assert first.wait(GUARD) == 0
    before = cube.open(store, "xsec").load()
    ledger_before = {p.name: p.read_bytes() for p in (store / cs.LEDGER / "xsec").glob("*.json")}

    p = cli("run", "--config", cfg, "--store", store, "--cluster", "slurm", "--jobqueue", jq,
            "--stages", "xsec,templates")
    # run.wait_timeout is 600 s: returning at all well within the guard shows it did not wait it out
    out, err = p.communicate(timeout=GUARD / 2)
    assert p.returncode == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("stardiffuse: error: Slurm refused the worker job"), err
    assert "Memory specification can not be satisfied" in err and "jobqueue.slurm" in err
    assert "Traceback" not in err
    xr.testing.assert_identical(before, cube.open(store, "xsec").load())
    assert {p.name: p.read_bytes() for p in (store / cs.LEDGER / "xsec").glob("*.json")} == ledger_before
    assert not squeue(name)
