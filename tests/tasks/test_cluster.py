"""Tests of tasks.cluster: sync, LocalCluster and Slurm (dask-jobqueue) without a Slurm site.

The Slurm end-to-end test puts the fake sbatch/squeue/scancel of tests/data/fake_slurm first on
PATH: sbatch really starts the generated job script in the background, a real Dask worker
connects, computes, and is cancelled at shutdown.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import yaml

from tasks import cluster as tc

FAKE_SLURM = Path(__file__).resolve().parents[1] / "data" / "fake_slurm"


def _array_result():
    x = da.arange(20_000, chunks=1_000)
    return float((x**2 % 7).sum().compute())


def _write_yaml(path, **slurm):
    base = yaml.safe_load(tc.DEFAULT_JOBQUEUE_CONFIG.read_text())
    base["jobqueue"]["slurm"].update(slurm)
    path.write_text(yaml.safe_dump(base))
    return path


# Small, loopback-only resources for jobs started on this machine.
TEST_JOB = {
    "cores": 1,
    "processes": 1,
    "memory": "1GiB",
    "walltime": "00:05:00",
    "queue": "fakepart",
    "interface": "lo",
    "death-timeout": 20,
    "scheduler-options": {"dashboard_address": None},
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """Fake Slurm commands first on PATH, with their state directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "squeue", "scancel"):
        shutil.copy(FAKE_SLURM / name, bin_dir / name)
        (bin_dir / name).chmod(0o755)  # do not rely on the checkout keeping the exec bit
    state = tmp_path / "state"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(state))
    return state


def _live_pids_in_group(pgid):
    """Non-zombie processes whose process group is pgid (Linux /proc)."""
    live = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            live.append(int(entry.name))
    return live


# --- sync and argument errors ---------------------------------------------------------------


def test_sync_sets_and_restores_scheduler():
    before = dask.config.get("scheduler", None)
    with tc.make_client("sync") as client:
        assert client is None
        assert dask.config.get("scheduler") == "synchronous"
        assert _array_result() == pytest.approx(sum(i**2 % 7 for i in range(20_000)))
    assert dask.config.get("scheduler", None) == before


def test_bad_arguments_raise_cluster_error(tmp_path):
    with pytest.raises(tc.ClusterError, match="unknown cluster kind 'pbs'"):
        with tc.make_client("pbs"):
            pass
    with pytest.raises(tc.ClusterError, match="positive integer"):
        with tc.make_client("local", workers=0):
            pass
    missing = tmp_path / "nope.yaml"
    with pytest.raises(tc.ClusterError, match="nope.yaml"):
        tc.load_jobqueue_config(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobqueue:\n  pbs: {}\n")
    with pytest.raises(tc.ClusterError, match="jobqueue: slurm:"):
        tc.load_jobqueue_config(bad)


# --- (a) the generated Slurm job script -----------------------------------------------------


def test_default_job_script():
    """The shipped deployment/jobqueue.yaml produces the batch script we document."""
    with tc.slurm_cluster() as cluster:
        script = cluster.job_script()
    print(script)
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    for directive in ("-J stardiffuse-worker", "-p compute", "--cpus-per-task=16", "--mem=64G", "-t 04:00:00"):
        assert f"#SBATCH {directive}" in lines
    assert "export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1" in lines
    worker = lines[-1]
    # python: null -> the interpreter running the client
    assert worker.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://")
    for arg in ("--nthreads 1", "--nworkers 16", "--memory-limit 4.00GiB", "--nanny",
                "--death-timeout 120", "--local-directory ${TMPDIR:-/tmp}"):
        assert arg in worker
    # the loaded settings do not leak into the global dask config
    assert dask.config.get("jobqueue.slurm.queue", None) != "compute"


def test_job_script_follows_yaml(tmp_path):
    cfg = _write_yaml(
        tmp_path / "jq.yaml",
        cores=4, processes=2, memory="10GiB", walltime="12:00:00", queue="long",
        account="astro42", python="/opt/site/venv/bin/python",
        **{"job-extra-directives": ["--qos=low"], "interface": "lo",
           "scheduler-options": {"dashboard_address": None}},
    )
    with tc.slurm_cluster(cfg) as cluster:
        script = cluster.job_script()
    for directive in ("-p long", "-A astro42", "--cpus-per-task=4", "--mem=10G", "-t 12:00:00", "--qos=low"):
        assert f"#SBATCH {directive}" in script
    assert "/opt/site/venv/bin/python -m distributed.cli.dask_worker tcp://127.0.0.1:" in script
    assert "--nthreads 2 --memory-limit 5.00GiB --nworkers 2" in script
    assert "--interface lo" in script


# --- (b) a real job through fake sbatch / squeue / scancel ----------------------------------


def test_slurm_end_to_end_with_fake_sbatch(tmp_path, fake_slurm):
    cfg = _write_yaml(tmp_path / "jq.yaml", **TEST_JOB, **{"local-directory": str(tmp_path / "scratch")})
    with tc.make_client("slurm", workers=1, jobqueue_config=cfg, wait_timeout=60) as client:
        assert client.submit(sum, [1, 2, 3]).result() == 6
        assert _array_result() == pytest.approx(sum(i**2 % 7 for i in range(20_000)))
        # the worker is the process started by the fake sbatch, not us
        (job_env,) = client.run(lambda: os.environ.get("SLURM_JOB_ID")).values()
        (worker_pid,) = client.run(os.getpid).values()
        assert worker_pid != os.getpid()
        (pidfile,) = fake_slurm.glob("*.pid")
        assert pidfile.stem == job_env
        pgid = int(pidfile.read_text())
        assert worker_pid in _live_pids_in_group(pgid)
        squeue = subprocess.run(["squeue"], capture_output=True, text=True, check=True).stdout
        assert job_env in squeue
        # dask-jobqueue deleted its temporary script; the fake kept a copy
        assert "distributed.cli.dask_worker" in (fake_slurm / f"{job_env}.sh").read_text()
    # closed cleanly: scancel ran and no process of the job is left
    deadline = time.monotonic() + 15
    while _live_pids_in_group(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _live_pids_in_group(pgid), (fake_slurm / f"{job_env}.log").read_text()[-2000:]
    assert job_env not in subprocess.run(["squeue"], capture_output=True, text=True).stdout


def test_slurm_workers_that_never_start(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/usr/bin/env bash\necho "Submitted batch job 77"\n')
    (bin_dir / "scancel").write_text("#!/usr/bin/env bash\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cfg = _write_yaml(tmp_path / "jq.yaml", **TEST_JOB)
    with pytest.raises(tc.ClusterError, match=r"0 of 1 Dask workers .* within 2 s.*squeue"):
        with tc.make_client("slurm", workers=1, jobqueue_config=cfg, wait_timeout=2):
            pass


# --- (c) LocalCluster -----------------------------------------------------------------------


def test_local_cluster_matches_sync():
    with tc.make_client("sync"):
        expected = _array_result()
    with tc.make_client("local", workers=2) as client:
        info = client.scheduler_info()["workers"]
        assert len(info) == 2
        assert all(w["nthreads"] == 1 for w in info.values())
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        assert _array_result() == expected
        assert client.submit(sum, [1, 2, 3]).result() == 6
    assert client.status == "closed"


def test_adaptive_slurm_replaces_a_job_that_ends_mid_stage(tmp_path, fake_slurm):
    # Workers retire after 8 s (their Slurm job ends); adapt() submits a new job and the
    # stage finishes on it, with every chunk recorded and the same numbers as in-process.
    sys.path.insert(0, str(Path(__file__).parent / "stages"))
    from small_store import small_config

    import cube
    from tasks.runner import run

    config = small_config({}, **{"templates.chunk": 8})
    jq = _write_yaml(tmp_path / "jq.yaml", **TEST_JOB, **{"local-directory": str(tmp_path / "scratch")})
    store = tmp_path / "s.zarr"
    with tc.make_client("slurm", jobqueue_config=jq, wait_timeout=60, adapt=(1, 1), worker_lifetime="8s",
                        lifetime_stagger="0s") as client:
        res = run(config, store, client=client, stages=["templates"]).stages["templates"]
    assert res.chunks_computed == res.chunks_total > 1
    jobs = sorted(p.stem for p in fake_slurm.glob("*.sh"))
    assert len(jobs) >= 2, "no job was replaced: the stage finished within one worker lifetime"
    ref = tmp_path / "ref.zarr"
    run(config, ref, stages=["templates"])
    a, b = cube.open(store, "templates").load(), cube.open(ref, "templates").load()
    np.testing.assert_array_equal(a.rho.values, b.rho.values)


def test_adapt_bounds_are_checked():
    with pytest.raises(tc.ClusterError, match="min_jobs <= max_jobs"):
        with tc.make_client("slurm", adapt=(3, 2)):
            pass


def test_lazy_client_starts_a_cluster_only_when_there_is_work(tmp_path):
    from tasks.config import load_preset
    from tasks.runner import run

    d = load_preset("quick").model_dump()
    d["xsec"] = {"E_p": {"min": 0.1, "max": 100.0, "per_decade": 3}, "energy": {"min": 0.1, "max": 10.0, "per_decade": 3}, "chunk": 4}
    from tasks.config import Config

    config = Config.model_validate(d)
    store = tmp_path / "s.zarr"
    for expect_start in (True, False):
        lazy = tc.LazyClient(lambda: tc.make_client("local", workers=1))
        try:
            res = run(config, store, client=lazy, stages=["xsec"]).stages["xsec"]
            assert lazy.started is expect_start
            assert res.chunks_computed == (res.chunks_total if expect_start else 0)
        finally:
            lazy.close()
