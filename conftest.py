"""The session's one tiny store, shared by tests/ and the notebooks in notebooks/.

This file sits at the repository root because a ``conftest.py`` applies only to the tests under its
own folder: in tests/ its notebook hook never ran, and each notebook built the quick preset itself
(~45 s each instead of ~4 s).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

#: Configuration of the session's tiny store (the quick preset on coarse grids).
TINY_CONFIG = Path(__file__).parent / "tests" / "data" / "tiny.yaml"

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
