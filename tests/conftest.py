"""Shared fixtures: tiny configurations and scratch stores."""

from __future__ import annotations

import pytest

from tasks.config import Config, load_preset


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
