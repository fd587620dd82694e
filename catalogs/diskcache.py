"""Per-machine disk cache of tables a process would otherwise rebuild on every start.

A table cached here is a pure function of installed packages and of the arguments that name
it (the key), so it sits where numba keeps its compiled kernels: ``NUMBA_CACHE_DIR`` if set,
else the ``__pycache__`` next to the module that builds it, and nowhere if that cannot be
written. An entry is written through a temporary file and renamed, so a reader sees it whole
or not at all, and it is read as a plain array (``allow_pickle=False``): an unreadable entry is
rebuilt with a warning, never trusted. A name keeps its ``KEEP`` newest entries: an upgrade
that changes a key does not leave the old table behind for ever, and two environments sharing a
cache directory do not evict each other's.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from catalogs.jit import cache_directory
from cube.fingerprint import digest

__all__ = ["KEEP", "cache_directory", "cached_array"]

KEEP = 2


def cached_array(directory: Path | None, name: str, key: dict, build: Callable[[], np.ndarray]) -> np.ndarray:
    """``build()``, or the array an earlier call with the same ``name`` and ``key`` saved in ``directory``.

    Parameters
    ----------
    directory : Path or None
        Cache directory (:func:`cache_directory`); ``None`` builds without caching.
    name : str
        What the table is (part of the file name).
    key : dict
        Everything the table depends on (package versions, arguments, grids, the build's
        source), hashed with :func:`cube.fingerprint.digest` like every other cache key.
    build : callable
        Returns the table (a numeric array).
    """
    if directory is None:
        return build()
    path = directory / f"{name}-{digest(key)[:20]}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable entry is rebuilt, never executed
            warnings.warn(f"ignoring unreadable cache entry {path} ({type(exc).__name__}: {exc}); rebuilding it", stacklevel=2)
    table = build()
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # a unique name: the directory may be shared by processes of several nodes
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.npy", dir=directory)
        with os.fdopen(fd, "wb") as f:
            np.save(f, table, allow_pickle=False)
        os.replace(tmp, path)
        _evict(directory, name, path)
    except OSError:
        # a read-only or full cache directory costs the rebuild, nothing else
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return table


def _evict(directory: Path, name: str, kept: Path) -> None:
    """Delete all but the :data:`KEEP` newest entries of ``name`` (``kept``, just written, stays)."""
    entries = []
    for entry in directory.glob(f"{name}-*.npy"):
        with contextlib.suppress(OSError):  # another process may delete it first
            entries.append((entry.stat().st_mtime_ns, entry))
    entries.sort(reverse=True)
    for _, entry in entries[KEEP:]:
        if entry != kept:
            with contextlib.suppress(OSError):
                entry.unlink()
