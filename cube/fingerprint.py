"""Chunk keys and fingerprints.

A fingerprint is a SHA-256 over a canonical JSON form of everything a piece of a cube
depends on: the stage's code version, the configuration it reads, its own coordinate
values and the fingerprints of the upstream pieces it reads (a Merkle chain).

Fingerprints are kept per *row* of the chunked dimension (one E_p value, one stellar
model, ...) and per chunk (the hash of its rows).  Rows let a rerun whose grid changed
shape reuse every row that is still wanted, wherever it moved to.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["ChunkKey", "chunk_keys", "canonical", "fingerprint", "combine"]


@dataclass(frozen=True, order=True)
class ChunkKey:
    """Immutable, hashable name of one chunk of a cube: a slice of its chunked dim.

    Attributes
    ----------
    group : str
        Cube group (``"xsec"``, ``"templates"``, ...).
    dim : str
        The chunked dimension.
    start, stop : int
        Index range ``[start, stop)`` along ``dim``.
    """

    group: str
    dim: str
    start: int
    stop: int

    @property
    def name(self) -> str:
        """File-system safe name, stable across runs."""
        return f"{self.dim}-{self.start:09d}-{self.stop:09d}"

    @property
    def region(self) -> dict[str, slice]:
        """The ``region`` argument of :meth:`xarray.Dataset.to_zarr` for this chunk."""
        return {self.dim: slice(self.start, self.stop)}

    def __len__(self) -> int:
        return self.stop - self.start


def chunk_keys(group: str, dim: str, size: int, chunk: int) -> list[ChunkKey]:
    """Split ``size`` rows of ``dim`` into regular chunks of ``chunk`` rows (the last may be short)."""
    if chunk <= 0:
        raise ValueError(f"chunk size must be positive, got {chunk}")
    return [ChunkKey(group, dim, s, min(s + chunk, size)) for s in range(0, size, chunk)]


def canonical(obj: Any) -> Any:
    """Convert ``obj`` into JSON-able plain data with a single canonical form.

    Floats are written with 17 significant digits (exact round trip), mappings are
    sorted by key, numpy arrays and scalars become lists and Python numbers, so two
    configurations that compare equal always give the same text.
    """
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, np.ndarray):
        return [canonical(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, np.generic):
        return canonical(obj.item())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return repr(obj)
        return float(f"{obj:.17g}")
    if hasattr(obj, "model_dump"):
        return canonical(obj.model_dump(mode="json"))
    raise TypeError(f"cannot fingerprint an object of type {type(obj).__name__}")


def fingerprint(**parts: Any) -> str:
    """SHA-256 hex digest of the canonical JSON form of the keyword arguments."""
    text = json.dumps(canonical(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def combine(fingerprints: Iterable[str]) -> str:
    """Fingerprint of an ordered collection of fingerprints (a chunk from its rows)."""
    h = hashlib.sha256()
    for fp in fingerprints:
        h.update(fp.encode())
        h.update(b"\n")
    return h.hexdigest()
