"""Shared fixtures of tests/: a small xsec configuration, scratch stores, the dask setting and the Slurm skip.

The session's one tiny store (fixtures ``tiny_store``/``tiny_summary``) lives in the repository's
root ``conftest.py``, because the notebooks under ``notebooks/`` read it too.
"""

from __future__ import annotations

import shutil

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
def xsec_config() -> Config:
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
