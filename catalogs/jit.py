"""numba options shared by the project's compiled kernels (catalogs and tasks both use them)."""

from __future__ import annotations

import os

__all__ = ["jit_options", "warm_numba"]


def jit_options(module_file: str) -> dict:
    """``numba.njit`` keywords for the kernels of the module at ``module_file``.

    The on-disk JIT cache is used only where numba can write it (``NUMBA_CACHE_DIR``, or the
    ``__pycache__`` next to the module); otherwise the kernels are compiled once per process.
    ``error_model="numpy"`` gives IEEE division (no Python exception branches), so lane loops
    vectorise.
    """
    pycache = os.path.join(os.path.dirname(os.path.abspath(module_file)), "__pycache__")
    return dict(
        cache=bool(os.environ.get("NUMBA_CACHE_DIR"))
        or os.access(pycache if os.path.isdir(pycache) else os.path.dirname(pycache), os.W_OK),
        error_model="numpy",
        boundscheck=False,
    )


def _ready(x):  # pragma: no cover - compiled
    return x + 1.0


def warm_numba() -> None:
    """Pay numba's per-process set-up (~0.6 s: its typing and lowering registries) with a trivial cached kernel."""
    import numba

    numba.njit(**jit_options(__file__))(_ready)(1.0)
