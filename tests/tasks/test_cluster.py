"""Tests of tasks.cluster that need no Slurm: sync, LocalCluster, the generated Slurm job script.

Runs on a real Slurm are in slurm/ (marker ``slurm``).
"""

import os
import stat
import sys

import dask
import dask.array as da
import pytest
import yaml

from tasks import cluster as tc

def _array_result():
    x = da.arange(20_000, chunks=1_000)
    return float((x**2 % 7).sum().compute())


def _write_yaml(path, **slurm):
    base = yaml.safe_load(tc.DEFAULT_JOBQUEUE_CONFIG.read_text())
    base["jobqueue"]["slurm"].update(slurm)
    path.write_text(yaml.safe_dump(base))
    return path


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
    # TLS by default: the worker gets this run's credentials from the private directory
    assert worker.startswith(f"{sys.executable} -m distributed.cli.dask_worker tls://")
    creds = tc.DEFAULT_TLS_DIRECTORY.expanduser()
    for opt in ("--tls-ca-file", "--tls-cert", "--tls-key"):
        assert f"{opt} {creds}/.dask-jobqueue.worker." in worker
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
    with tc.slurm_cluster(cfg, tls=False) as cluster:
        script = cluster.job_script()
    for directive in ("-p long", "-A astro42", "--cpus-per-task=4", "--mem=10G", "-t 12:00:00", "--qos=low"):
        assert f"#SBATCH {directive}" in script
    assert "/opt/site/venv/bin/python -m distributed.cli.dask_worker tcp://127.0.0.1:" in script
    assert "--nthreads 2 --memory-limit 5.00GiB --nworkers 2" in script
    assert "--interface lo" in script


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


def test_tls_credentials_are_private_and_removed(tmp_path):
    shared = tmp_path / "shared" / "tls"
    cfg = _write_yaml(tmp_path / "jq.yaml", interface="lo", **{"shared-temp-directory": str(shared)})
    with tc.slurm_cluster(cfg) as cluster:
        script = cluster.job_script()
        files = sorted(shared.glob(".dask-jobqueue.worker.*"))
        assert {f.name.split(".")[3] for f in files} == {"ca_file", "cert", "key"}
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        assert stat.S_IMODE(shared.stat().st_mode) == 0o700
        assert all(str(f) in script for f in files)
        assert cluster.scheduler_address.startswith("tls://")
    assert not any(f.exists() for f in files)


def test_tls_directory_of_someone_else_is_refused(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    assert tc._private_directory(loose) == loose  # ours, tightened
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700
    if os.getuid() != 0:  # root owns everything it creates; only check the refusal as a user
        return
    os.chown(loose, 12345, 12345)
    with pytest.raises(tc.ClusterError, match="belongs to another user.*shared-temp-directory"):
        tc._private_directory(loose)


def test_dashboard_is_announced_or_explained():
    lines = []
    with tc.make_client("local", workers=1, dashboard_address=":0", announce=lines.append) as client:
        link = client.dashboard_link
    (line,) = lines
    try:
        import bokeh  # noqa: F401
    except ImportError:
        assert line == "Dask dashboard: needs bokeh (pip install 'bokeh>=3.1'); running without it"
    else:
        assert line == f"Dask dashboard: {link}"
    lines.clear()
    with tc.make_client("local", workers=1, dashboard_address=None, announce=lines.append):
        pass
    assert lines == []
