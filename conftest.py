"""The session's one tiny store, shared by tests/ and the notebooks in notebooks/.

This file sits at the repository root because a ``conftest.py`` applies only to the tests under its
own folder: in tests/ its notebook hook never ran, and each notebook built the quick preset itself
(~45 s each instead of ~4 s).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

#: Configuration of the session's tiny store (the quick preset on coarse grids).
TINY_CONFIG = Path(__file__).parent / "tests" / "data" / "tiny.yaml"

_tiny: dict = {}


def _shared_dir(config: pytest.Config) -> Path | None:
    """The folder all xdist workers of this run share (their basetemps' parent), or ``None`` without xdist.

    xdist gives each worker the basetemp ``<run's basetemp>/popen-gwN``; pytest removes the run's
    basetemp with its older ones, so nothing put there outlives a few runs.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ or not config.option.basetemp:
        return None
    return Path(config.option.basetemp).parent


def _build(store: Path) -> dict:
    from tasks.config import load_config
    from tasks.runner import run

    return dataclasses.asdict(run(load_config(TINY_CONFIG), store))


def _manifest(store: Path) -> dict[str, list[int]]:
    """Size and modification time of every file in ``store``: what a write into it would change."""
    return {str(p.relative_to(store)): [p.stat().st_size, p.stat().st_mtime_ns]
            for p in sorted(store.rglob("*")) if p.is_file()}


def _tiny_store(config: pytest.Config) -> Path:
    """Build the tiny store once per run (every stage, in one process) and return its path.

    Under xdist the first worker to ask builds it into the run's shared folder while holding an
    ``flock``; the others block on that lock (the kernel wakes them when it is released, or when
    the builder dies) and then read the summary it left. Building it on each worker cost every
    worker a full build, and the numba compilation of its kernels, at the same time.
    """
    if "store" in _tiny:
        return _tiny["store"]
    shared = _shared_dir(config)
    if shared is None:
        _tiny["dir"] = Path(tempfile.mkdtemp(prefix="stardiffuse-tiny-"))  # removed at session end
        store = _tiny["dir"] / "tiny.zarr"
        summary = _build(store)
        _tiny["manifest"] = _manifest(store)
    else:
        store, done = shared / "tiny.zarr", shared / "tiny-summary.json"
        with open(shared / "tiny.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                # a worker that died mid-build left a partial store and no summary: start afresh
                shutil.rmtree(store, ignore_errors=True)
                built = _build(store)
                done.write_text(json.dumps({"summary": built, "manifest": _manifest(store)}))
            left = json.loads(done.read_text())
        summary, _tiny["manifest"] = left["summary"], left["manifest"]
    from tasks.runner import RunSummary, StageResult

    _tiny["summary"] = RunSummary(summary["store"], {k: StageResult(**v) for k, v in summary["stages"].items()})
    _tiny["store"] = store
    return store


@pytest.fixture(scope="session")
def tiny_store(pytestconfig) -> Path:
    """A complete store (xsec to sed) built once per run from ``tests/data/tiny.yaml``.

    Shared by every test that only reads a built store (sky, report, figures, export, notebooks),
    and by both xdist workers at once: treat it as read-only, and copy it (``shutil.copytree``)
    before changing anything in it. At the end of the session the store must be as it was built:
    a test that wrote into it would change what the tests of the other worker read.
    """
    store = _tiny_store(pytestconfig)
    yield store
    assert _manifest(store) == _tiny["manifest"], f"a test wrote into the shared tiny store {store}: copy it first"


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
        os.environ["STARDIFFUSE_STORE"] = str(_tiny_store(item.config))
        os.environ["STARDIFFUSE_CONFIG"] = str(TINY_CONFIG)


def pytest_sessionfinish(session, exitstatus):
    if "dir" in _tiny:
        shutil.rmtree(_tiny["dir"], ignore_errors=True)
