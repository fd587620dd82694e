"""Shared fixtures: tiny configurations, scratch stores and the session's one tiny store."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tasks.config import Config, load_preset


@pytest.fixture(autouse=True)
def _dask_scheduler_setting_is_restored():
    """Put back dask's global ``scheduler`` setting after each test.

    A ``distributed.Client`` that fails or is torn down mid-test can leave
    ``scheduler: dask.distributed`` behind, which would send a later test's in-process
    computations to a closed cluster.
    """
    import dask

    missing = object()
    saved = dask.config.config.get("scheduler", missing)
    yield
    if saved is missing:
        dask.config.config.pop("scheduler", None)
    else:
        dask.config.config["scheduler"] = saved


@pytest.fixture
def tiny_config() -> Config:
    """The quick preset with a small xsec grid (a few chunks)."""
    base = load_preset("quick").model_dump()
    base["xsec"] = {
        "E_p": {"min": 0.1, "max": 1000.0, "per_decade": 4},
        "energy": {"min": 0.1, "max": 100.0, "per_decade": 4},
        "chunk": 3,
    }
    return Config.model_validate(base)


@pytest.fixture
def store(tmp_path):
    return tmp_path / "test.zarr"


def _slurm_unavailable() -> str | None:
    """Why tests marked ``slurm`` cannot run here, or ``None`` when ``sinfo`` answers."""
    import shutil
    import subprocess

    hint = "start one with `bash deployment/slurm/local-cluster.sh start` (.ci/run does)"
    if shutil.which("sinfo") is None:
        return f"no Slurm: `sinfo` is not on PATH; {hint}"
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return f"`sinfo` did not answer within 60 s; {hint}"
    if r.returncode != 0 or not r.stdout.strip():
        return f"`sinfo` does not answer ({(r.stderr or r.stdout).strip() or 'no partition'}); {hint}"
    return None


def pytest_collection_modifyitems(config, items):
    """Skip the ``slurm`` tests, with the reason, where no Slurm answers (asked once per session)."""
    marked = [item for item in items if item.get_closest_marker("slurm")]
    if not marked:
        return
    reason = _slurm_unavailable()
    if reason:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=reason))


#: Configuration of the session's tiny store (the quick preset on coarse grids).
TINY_CONFIG = Path(__file__).parent / "data" / "tiny.yaml"

_tiny: dict = {}


def _tiny_store() -> Path:
    """Build the tiny store once per session (every stage, in this process) and return its path."""
    if "store" not in _tiny:
        from tasks.config import load_config
        from tasks.runner import run

        _tiny["dir"] = Path(tempfile.mkdtemp(prefix="stardiffuse-tiny-"))
        store = _tiny["dir"] / "tiny.zarr"
        _tiny["summary"] = run(load_config(TINY_CONFIG), store)
        _tiny["store"] = store
    return _tiny["store"]


@pytest.fixture(scope="session")
def tiny_store() -> Path:
    """A complete store (xsec to sed) built once per session from ``tests/data/tiny.yaml``.

    Shared by every test that only reads a built store (sky, report, figures, export, notebooks):
    treat it as read-only, and copy it (``shutil.copytree``) before changing anything in it.
    """
    return _tiny_store()


@pytest.fixture(scope="session")
def tiny_summary(tiny_store):
    """The :class:`tasks.runner.RunSummary` of the run that built :func:`tiny_store`."""
    return _tiny["summary"]


def pytest_runtest_setup(item):
    """Hand the notebooks (nbmake items, which take no fixtures) the tiny store and its configuration.

    The notebooks read ``STARDIFFUSE_STORE`` and ``STARDIFFUSE_CONFIG`` from the environment their
    kernel inherits.
    """
    if type(item).__name__ == "NotebookItem":
        os.environ["STARDIFFUSE_STORE"] = str(_tiny_store())
        os.environ["STARDIFFUSE_CONFIG"] = str(TINY_CONFIG)


def pytest_sessionfinish(session, exitstatus):
    if "dir" in _tiny:
        shutil.rmtree(_tiny["dir"], ignore_errors=True)
