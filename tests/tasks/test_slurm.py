"""End-to-end tests against a real Slurm (``deployment/slurm/local-cluster.sh start``; .ci/run starts it).

Every test waits on events it can observe (a job listed by ``squeue``, a chunk recorded in
the ledger, a line in Slurm's job completion log, a process exiting); the deadlines below
only fail a test that is stuck, they never decide what a test checks.

Jobs get a name of their own per test (``jobqueue.slurm.name``), so that ``squeue -n`` and
the job completion log single out this test's jobs on a cluster shared with other work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import xarray as xr
import yaml

import cube
from cube import store as cs
from tasks import cluster as tc

from .stages.small_store import small_config

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]

#: Guard against a stuck test only: generous, and reaching it fails the test.
GUARD = 600.0
POLL = 0.1


def _jobcomp_log() -> Path | None:
    """Slurm's job completion log (``JobCompType=jobcomp/filetxt``, as local-cluster.sh sets), if it keeps one."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    conf = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    conf = {k.strip(): v.strip() for k, v in conf.items()}
    if conf.get("JobCompType") != "jobcomp/filetxt":
        return None
    return Path(conf["JobCompLoc"])


JOBCOMP = _jobcomp_log()


@pytest.fixture
def jobcomp():
    """The job completion log the tests read final job states from; skip where Slurm keeps none."""
    if JOBCOMP is None:
        pytest.skip("Slurm keeps no job completion log (JobCompType=jobcomp/filetxt; local-cluster.sh sets it)")
    return JOBCOMP


def _env() -> dict[str, str]:
    """The environment of a run: this checkout first on PYTHONPATH, so that the CLI and the
    Slurm jobs (sbatch exports the submitting environment) import the code under test."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _partition() -> str:
    """The default partition (``sinfo`` marks it with ``*``), else the first one."""
    names = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True).stdout.split()
    return next((n.rstrip("*") for n in names if n.endswith("*")), names[0])


def _jobqueue(tmp_path: Path, **over) -> tuple[Path, str]:
    """The project's deployment/jobqueue.yaml with only queue and resources adapted; returns (file, job name)."""
    name = f"sdtest-{uuid.uuid4().hex[:8]}"
    data = yaml.safe_load(tc.DEFAULT_JOBQUEUE_CONFIG.read_text())
    data["jobqueue"]["slurm"].update(
        {
            "name": name,
            "queue": _partition(),
            "cores": 1,
            "processes": 1,
            "memory": "3GiB",
            "walltime": "00:30:00",
            "interface": "lo",
            "local-directory": str(tmp_path / "scratch"),
            "log-directory": str(tmp_path / "logs"),
            **over,
        }
    )
    path = tmp_path / "jobqueue.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, name


def _config(tmp_path: Path, **over) -> Path:
    """A tiny configuration: 27 templates in 14 chunks of 2, so a stage spans many chunks."""
    c = small_config(
        {},
        **{
            "templates.masses": [1.0, 2.0, 5.0],
            "templates.metallicities": [0.02],
            "templates.chunk": 2,
            "yields.chunk": 8,
            "run.dashboard_address": None,  # no fixed port: tests may run side by side
            **over,
        },
    )
    path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(json.loads(c.model_dump_json())))
    return path


def _cli(*args, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tasks.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=cwd)


def _squeue(name: str) -> list[tuple[str, str]]:
    """(job id, state) of the jobs named ``name`` that squeue lists (pending, running, completing)."""
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True, check=True)
    return [tuple(line.split()) for line in out.stdout.splitlines() if line.strip()]


def _jobcomp(name: str) -> dict[str, str]:
    """{job id: final state} of the finished jobs named ``name``, from Slurm's job completion log."""
    out: dict[str, str] = {}
    if JOBCOMP is None or not JOBCOMP.exists():
        return out
    for line in JOBCOMP.read_text().splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("Name") == name:
            out[fields["JobId"]] = fields.get("JobState", "")
    return out


def _wait(condition, what: str, proc: subprocess.Popen | None = None):
    """Poll ``condition()`` until it returns something truthy; fail if ``proc`` ends first or the guard passes."""
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{out[-2000:]}\n{err[-4000:]}")
        time.sleep(POLL)
    pytest.fail(f"stuck: no {what} within {GUARD:g} s")


def _gone_from_squeue(name: str) -> None:
    """Wait until no job named ``name`` is listed (a cancelled job is COMPLETING for a few seconds)."""
    _wait(lambda: not _squeue(name), f"end of the jobs named {name} in squeue")


def _recorded(store: Path, group: str) -> int:
    """Chunks recorded for ``group``, in its staging ledger (a fresh store builds there) or its own."""
    return sum(len(list((store / cs.LEDGER / g).glob("*.json"))) for g in (cs.staging_name(group), group))


def _assert_identical(a: Path, b: Path, groups) -> None:
    for g in groups:
        xr.testing.assert_identical(cube.open(a, g).load(), cube.open(b, g).load())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny configuration computed in-process (``--cluster sync``): the numbers every Slurm run must give."""
    d = tmp_path_factory.mktemp("ref")
    cfg = _config(d)
    p = _cli("run", "--config", cfg, "--store", d / "ref.zarr", "--cluster", "sync",
             "--stages", "xsec,templates,yields")
    out, err = p.communicate(timeout=GUARD)
    assert p.returncode == 0, err
    return cfg, d / "ref.zarr"


# --- 1. the CLI on Slurm, with TLS ----------------------------------------------------------------


def test_cli_run_on_slurm_matches_in_process(tmp_path, reference, jobcomp):
    cfg, ref = reference
    jq, name = _jobqueue(tmp_path)
    store = tmp_path / "slurm.zarr"
    p = _cli("run", "--config", cfg, "--store", store, "--cluster", "slurm", "--jobqueue", jq,
             "--stages", "xsec,templates,yields", "--json")
    seen = _wait(lambda: _squeue(name), f"job named {name} in squeue", proc=p)
    out, err = p.communicate(timeout=GUARD)
    assert p.returncode == 0, err
    # run.tls is on by default: the run went through TLS, and said where its jobs are
    assert "(TLS)" in err and "tls://" in err, err
    assert seen[0][0] in err
    _gone_from_squeue(name)
    assert set(_wait(lambda: _jobcomp(name), f"{name} in {JOBCOMP}")) == {job for job, _ in seen}
    summary = json.loads(out.strip().splitlines()[-1])["stages"]
    for group in ("xsec", "templates", "yields"):
        assert summary[group]["chunks_computed"] == summary[group]["chunks_total"] > 0
        assert len(cs.read_ledger(store, group)) == summary[group]["chunks_total"]
    _assert_identical(store, ref, ["xsec", "templates", "yields"])


# --- 2. a worker job scancel'ed mid-stage is replaced ------------------------------------------------


def test_scancel_mid_stage_is_replaced_and_numbers_are_identical(tmp_path, reference, jobcomp):
    _, ref = reference
    cfg = _config(tmp_path, **{"run.min_jobs": 1, "run.max_jobs": 1})
    jq, name = _jobqueue(tmp_path)
    store = tmp_path / "slurm.zarr"
    p = _cli("run", "--config", cfg, "--store", store, "--cluster", "slurm", "--jobqueue", jq,
             "--stages", "templates", "--json")
    # The trigger is the data, not a clock: cancel once the stage has recorded a chunk.
    n_before = _wait(lambda: _recorded(store, "templates"), "a recorded templates chunk", proc=p)
    (first, state), = _squeue(name)
    assert state == "RUNNING"
    subprocess.run(["scancel", first], check=True)
    n_at_cancel = _recorded(store, "templates")
    out, err = p.communicate(timeout=GUARD)
    assert p.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])["stages"]["templates"]
    total = summary["chunks_total"]
    assert 1 <= n_before <= n_at_cancel < total, "the stage had finished before the job was cancelled"
    _gone_from_squeue(name)
    ended = _wait(lambda: len(_jobcomp(name)) >= 2 and _jobcomp(name), f"two jobs named {name} in {JOBCOMP}")
    assert ended[first] == "CANCELLED"
    assert len(ended) >= 2, f"no second job ran: {ended}"
    assert len(cs.read_ledger(store, "templates")) == total
    _assert_identical(store, ref, ["templates"])


# --- 3. the driver inside an allocation: sbatch run_paper.sbatch -----------------------------------


def test_run_paper_sbatch_completes_with_the_summary(tmp_path, reference, jobcomp):
    cfg, _ = reference
    jq, name = _jobqueue(tmp_path)
    driver = f"{name}-driver"
    store = tmp_path / "paper.zarr"
    env = _env() | {
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
        ["sbatch", "--parsable", "-J", driver, "-p", _partition(), "--cpus-per-task=1", "--mem=2G",
         "-t", "00:30:00", "-o", str(tmp_path / "driver-%j.out"), str(ROOT / "deployment/slurm/run_paper.sbatch")],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    )
    job = sub.stdout.strip().split(";")[0]
    final = _wait(lambda: _jobcomp(driver).get(job), f"end of driver job {job} in {JOBCOMP}")
    output = (tmp_path / f"driver-{job}.out").read_text()
    assert final == "COMPLETED", output[-4000:]
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["store"] == str(store)
    assert set(summary["stages"]) == {"xsec", "templates"}
    assert all(s["chunks_computed"] == s["chunks_total"] > 0 for s in summary["stages"].values())
    assert _jobcomp(name), "the driver's worker job did not run"  # workers were jobs of their own


# --- 4. a request Slurm can never satisfy ----------------------------------------------------------


def test_unsatisfiable_request_stops_at_once_and_keeps_the_store(tmp_path, reference):
    cfg, _ = reference
    jq, name = _jobqueue(tmp_path, memory="64TiB")  # more than any node of ours has
    store = tmp_path / "s.zarr"
    first = _cli("run", "--config", cfg, "--store", store, "--cluster", "sync", "--stages", "xsec")
    assert first.wait(GUARD) == 0
    before = cube.open(store, "xsec").load()
    ledger_before = {p.name: p.read_bytes() for p in (store / cs.LEDGER / "xsec").glob("*.json")}

    p = _cli("run", "--config", cfg, "--store", store, "--cluster", "slurm", "--jobqueue", jq,
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
    assert not _squeue(name)


# --- TLS: nobody else can use our workers --------------------------------------------------------


_CONNECT = """
import sys
from distributed import Client
from distributed.security import Security
address, kind = sys.argv[1], sys.argv[2]
security = Security.temporary() if kind == "other-certificate" else None
try:
    Client(address, security=security, timeout="30s")
    print("CONNECTED")
except Exception as exc:  # what a refused client sees
    print(f"REFUSED {type(exc).__name__}: {exc}")
"""


def _try_to_connect(address: str, kind: str) -> str:
    # each client in a fresh process: a refused Client leaves dask state behind in its process
    r = subprocess.run([sys.executable, "-c", _CONNECT, address, kind], capture_output=True, text=True, timeout=GUARD)
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr


def test_tls_refuses_clients_without_this_runs_certificate(tmp_path):
    jq, _ = _jobqueue(tmp_path)
    with tc.make_client("slurm", 1, jq, wait_timeout=GUARD) as client:
        address = client.scheduler.address
        assert address.startswith("tls://")
        assert client.submit(sum, [1, 2, 3]).result() == 6
        creds = sorted(Path(tc.DEFAULT_TLS_DIRECTORY).expanduser().glob(".dask-jobqueue.worker.*"))
        assert creds and all(f.stat().st_mode & 0o777 == 0o600 for f in creds)
        assert Path(tc.DEFAULT_TLS_DIRECTORY).expanduser().stat().st_mode & 0o777 == 0o700
        plain = _try_to_connect(address, "no-tls")  # no TLS at all
        assert plain.startswith("REFUSED") and "TLS" in plain, plain
        tcp = _try_to_connect(address.replace("tls://", "tcp://"), "no-tls")  # plain TCP at the TLS port
        assert tcp.startswith("REFUSED"), tcp
        other = _try_to_connect(address, "other-certificate")  # TLS with someone else's certificate
        assert other.startswith("REFUSED") and "certificate" in other.lower(), other
        assert client.submit(sum, [4, 5]).result() == 9  # ours still works
    assert not any(f.exists() for f in creds), "credentials left on disk after the run"


def test_tls_off_is_plain_tcp(tmp_path):
    jq, _ = _jobqueue(tmp_path)
    with tc.make_client("slurm", 1, jq, tls=False, wait_timeout=GUARD) as client:
        assert client.scheduler.address.startswith("tcp://")
        assert client.submit(sum, [1, 2, 3]).result() == 6


def test_a_job_that_never_starts_names_squeues_reason(tmp_path):
    # --hold: Slurm keeps the job pending forever, so the wait must end with its timeout;
    # the outcome does not depend on how long that is.
    jq, name = _jobqueue(tmp_path, **{"job-extra-directives": ["--hold"]})
    with pytest.raises(tc.ClusterError, match=r"0 of 1 Dask workers .* within 2 s; squeue says: \d+ PENDING \(JobHeldUser\)"):
        with tc.make_client("slurm", 1, jq, wait_timeout=2):
            pass
    _gone_from_squeue(name)
