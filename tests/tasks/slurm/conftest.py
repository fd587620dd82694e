"""Fixtures of the tests against a real Slurm; the helpers they share are in helpers.py."""

from __future__ import annotations

import pytest

from .helpers import GUARD, JOBCOMP, cli, config


@pytest.fixture
def jobcomp():
    """The job completion log the tests read final job states from; skip where Slurm keeps none."""
    if JOBCOMP is None:
        pytest.skip("Slurm keeps no job completion log (JobCompType=jobcomp/filetxt; local-cluster.sh sets it)")
    return JOBCOMP


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny configuration computed in-process (``--cluster sync``): the numbers every Slurm run must give."""
    d = tmp_path_factory.mktemp("ref")
    cfg = config(d)
    p = cli("run", "--config", cfg, "--store", d / "ref.zarr", "--cluster", "sync", "--stages", "xsec,templates,yields")
    out, err = p.communicate(timeout=GUARD)
    assert p.returncode == 0, err
    return cfg, d / "ref.zarr"
