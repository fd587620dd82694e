"""The CLI on a real Slurm gives the in-process numbers, also when its worker job is scancel'ed."""

from __future__ import annotations

import json
import subprocess

import pytest

from cube import store as cs

from .helpers import GUARD, JOBCOMP, cli, config, expect_identical, gone_from_squeue, jobcomp_states, jobqueue, recorded, squeue, wait

pytestmark = pytest.mark.slurm


# --- 1. the CLI on Slurm, with TLS ----------------------------------------------------------------


def test_cli_run_on_slurm_matches_in_process(tmp_path, reference, jobcomp):
    cfg, ref = reference
    jq, name = jobqueue(tmp_path)
    store = tmp_path / "slurm.zarr"
    p = cli("run", "--config", cfg, "--store", store, "--cluster", "slurm", "--jobqueue", jq,
            "--stages", "xsec,templates,yields", "--json")
    seen = wait(lambda: squeue(name), f"job named {name} in squeue", proc=p)
    out, err = p.communicate(timeout=GUARD)
    assert p.returncode == 0, err
    # run.tls is on by default: the run went through TLS, and said where its jobs are
    assert "(TLS)" in err and "tls://" in err, err
    assert seen[0][0] in err
    gone_from_squeue(name)
    assert set(wait(lambda: jobcomp_states(name), f"{name} in {JOBCOMP}")) == {job for job, _ in seen}
    summary = json.loads(out.strip().splitlines()[-1])["stages"]
    for group in ("xsec", "templates", "yields"):
        assert summary[group]["chunks_computed"] == summary[group]["chunks_total"] > 0
        assert len(cs.read_ledger(store, group)) == summary[group]["chunks_total"]
    expect_identical(store, ref, ["xsec", "templates", "yields"])


# --- 2. a worker job scancel'ed mid-stage is replaced ------------------------------------------------


def test_scancel_mid_stage_is_replaced_and_numbers_are_identical(tmp_path, reference, jobcomp):
    _, ref = reference
    cfg = config(tmp_path, **{"run.min_jobs": 1, "run.max_jobs": 1})
    jq, name = jobqueue(tmp_path)
    store = tmp_path / "slurm.zarr"
    p = cli("run", "--config", cfg, "--store", store, "--cluster", "slurm", "--jobqueue", jq,
            "--stages", "templates", "--json")
    # The trigger is the data, not a clock: cancel once the stage has recorded a chunk.
    n_before = wait(lambda: recorded(store, "templates"), "a recorded templates chunk", proc=p)
    (first, state), = squeue(name)
    assert state == "RUNNING"
    subprocess.run(["scancel", first], check=True)
    n_at_cancel = recorded(store, "templates")
    out, err = p.communicate(timeout=GUARD)
    assert p.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])["stages"]["templates"]
    total = summary["chunks_total"]
    assert 1 <= n_before <= n_at_cancel < total, "the stage had finished before the job was cancelled"
    gone_from_squeue(name)
    ended = wait(lambda: len(jobcomp_states(name)) >= 2 and jobcomp_states(name), f"two jobs named {name} in {JOBCOMP}")
    assert ended[first] == "CANCELLED"
    assert len(ended) >= 2, f"no second job ran: {ended}"
    assert len(cs.read_ledger(store, "templates")) == total
    expect_identical(store, ref, ["templates"])
