"""What the tests against a real Slurm share: job names, configurations, and waits on events.

Every test waits on events it can observe (a job listed by ``squeue``, a chunk recorded in
the ledger, a line in Slurm's job completion log, a process exiting); the deadlines below
only fail a test that is stuck, they never decide what a test checks.

Jobs get a name of their own per test (``jobqueue.slurm.name``), so that ``squeue -n`` and
the job completion log single out this test's jobs on a cluster shared with other work.

The tests are split over several files so that the two xdist workers (``--dist loadfile``)
share them.
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

from ..stages.small_store import small_config

ROOT = Path(__file__).resolve().parents[3]

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


def env() -> dict[str, str]:
    """The environment of a run: this checkout first on PYTHONPATH, so that the CLI and the
    Slurm jobs (sbatch exports the submitting environment) import the code under test."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [e.get("PYTHONPATH")])])
    return e


def partition() -> str:
    """The default partition (``sinfo`` marks it with ``*``), else the first one."""
    names = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True).stdout.split()
    return next((n.rstrip("*") for n in names if n.endswith("*")), names[0])


def jobqueue(tmp_path: Path, **over) -> tuple[Path, str]:
    """The project's deployment/jobqueue.yaml with only queue and resources adapted; returns (file, job name)."""
    name = f"sdtest-{uuid.uuid4().hex[:8]}"
    data = yaml.safe_load(tc.DEFAULT_JOBQUEUE_CONFIG.read_text())
    data["jobqueue"]["slurm"].update(
        {
            "name": name,
            "queue": partition(),
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


def config(tmp_path: Path, **over) -> Path:
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


def cli(*args, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tasks.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(), cwd=cwd)


def squeue(name: str) -> list[tuple[str, str]]:
    """(job id, state) of the jobs named ``name`` that squeue lists (pending, running, completing)."""
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True, check=True)
    return [tuple(line.split()) for line in out.stdout.splitlines() if line.strip()]


def jobcomp_states(name: str) -> dict[str, str]:
    """{job id: final state} of the finished jobs named ``name``, from Slurm's job completion log."""
    out: dict[str, str] = {}
    if JOBCOMP is None or not JOBCOMP.exists():
        return out
    for line in JOBCOMP.read_text().splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("Name") == name:
            out[fields["JobId"]] = fields.get("JobState", "")
    return out


def wait(condition, what: str, proc: subprocess.Popen | None = None):
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


def gone_from_squeue(name: str) -> None:
    """Wait until no job named ``name`` is listed (a cancelled job is COMPLETING for a few seconds)."""
    wait(lambda: not squeue(name), f"end of the jobs named {name} in squeue")


def recorded(store: Path, group: str) -> int:
    """Chunks recorded for ``group``, in its staging ledger (a fresh store builds there) or its own."""
    return sum(len(list((store / cs.LEDGER / g).glob("*.json"))) for g in (cs.staging_name(group), group))


def expect_identical(a: Path, b: Path, groups) -> None:
    for g in groups:
        xr.testing.assert_identical(cube.open(a, g).load(), cube.open(b, g).load())
