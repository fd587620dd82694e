"""numba options shared by the project's compiled kernels (catalogs and tasks both use them)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_directory", "jit_options", "warm_numba"]


def cache_directory(module_file: str) -> Path | None:
    """Where numba caches the kernels of the module at ``module_file`` (and :mod:`catalogs.diskcache` its tables).

    ``NUMBA_CACHE_DIR`` if set, else the ``__pycache__`` next to the module if it can be
    written (created or not), else ``None``: nowhere.
    """
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return Path(env)
    pycache = Path(module_file).resolve().parent / "__pycache__"
    probe = pycache if pycache.is_dir() else pycache.parent
    return pycache if os.access(probe, os.W_OK) else None


def jit_options(module_file: str) -> dict:
    """``numba.njit`` keywords for the kernels of the module at ``module_file``.

    The on-disk JIT cache is used only where numba can write it (``NUMBA_CACHE_DIR``, or the
    ``__pycache__`` next to the module); otherwise the kernels are compiled once per process.
    ``error_model="numpy"`` gives IEEE division (no Python exception branches), so lane loops
    vectorise.
    """
    return dict(
        cache=cache_directory(module_file) is not None,
        error_model="numpy",
        boundscheck=False,
    )


def _ready(x):  # pragma: no cover - compiled
    return x + 1.0


def warm_numba() -> None:
    """Pay numba's per-process set-up (~0.6 s: its typing and lowering registries) with a trivial cached kernel."""
    import numba

    numba.njit(**jit_options(__file__))(_ready)(1.0)
