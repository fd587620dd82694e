"""numba options shared by the project's compiled kernels (catalogs and tasks both use them)."""

from __future__ import annotations

import os

__all__ = ["jit_options"]


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
