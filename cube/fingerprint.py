"""Chunk keys and fingerprints.

A fingerprint is a SHA-256 over a canonical byte stream of everything a piece of a cube
depends on: the stage's code version, the configuration it reads, its own coordinate
values and the fingerprints of the upstream pieces it reads (a Merkle chain).

Cost matters as much as meaning: a plan of 1e6 rows must decide what to compute in
seconds.  So

* shared inputs (a configuration section, a grid, upstream fingerprints, the code
  version) are hashed once per plan into a :class:`Fingerprinter`, whose SHA-256 state
  is then copied for every row;
* numpy arrays are hashed by their bytes, after conversion to one canonical dtype per
  kind (little-endian float64, int64, bool; strings as UTF-8), never element by element;
* per-row parts are given as columns (:meth:`Fingerprinter.rows`), turned into one
  fixed-width byte record per row with numpy, so a row costs one ``copy``, one
  ``update`` and one ``hexdigest``.

The byte stream is type-tagged and length-prefixed, so different structures cannot
collide; mappings are sorted by key; ``-0.0`` and ``0.0`` and every NaN hash alike.
:data:`FORMAT` names this encoding and is stored with every ledger entry: a store whose
fingerprints were made by another format is reported stale once, with that reason.

Fingerprints are kept per *row* of the chunked dimension (one E_p value, one stellar
model, ...) and per chunk (the hash of its rows).  Rows let a rerun whose grid changed
shape reuse every row that is still wanted, wherever it moved to.  Where the rows of a
chunk cannot differ in their inputs (pixels of a map), a stage may fingerprint whole
chunks instead (:meth:`Fingerprinter.chunk`).
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["FORMAT", "ChunkKey", "chunk_keys", "Fingerprinter", "digest", "fingerprint", "combine"]

#: Version of the canonical encoding below; bump it whenever a byte of it changes.
FORMAT = "sha256-tagged/2"

_NAN = struct.pack("<d", math.nan)


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


def _float_bytes(x: float) -> bytes:
    if x != x:  # every NaN payload hashes alike
        return _NAN
    return struct.pack("<d", x + 0.0)  # + 0.0 folds -0.0 into 0.0


def _canonical_array(a: np.ndarray) -> tuple[str, np.ndarray] | None:
    """``(kind, little-endian contiguous array)``, or ``None`` for arrays hashed element-wise."""
    k = a.dtype.kind
    if k == "f":
        out = np.ascontiguousarray(a, dtype="<f8") + 0.0
        out[np.isnan(out)] = np.nan
        return "f8", out
    if k in "iu":
        return "i8", np.ascontiguousarray(a, dtype="<i8")
    if k == "b":
        return "b1", np.ascontiguousarray(a, dtype="|b1")
    return None


def _feed(h, obj: Any) -> None:
    """Append the canonical, type-tagged encoding of ``obj`` to the hash ``h``."""
    if obj is None:
        h.update(b"N")
    elif isinstance(obj, bool):
        h.update(b"T" if obj else b"F")
    elif isinstance(obj, int):
        s = str(obj).encode()
        h.update(b"i%d:" % len(s) + s)
    elif isinstance(obj, float):
        h.update(b"f" + _float_bytes(obj))
    elif isinstance(obj, str):
        s = obj.encode()
        h.update(b"s%d:" % len(s) + s)
    elif isinstance(obj, bytes):
        h.update(b"y%d:" % len(obj) + obj)
    elif isinstance(obj, np.generic):
        _feed(h, obj.item())
    elif isinstance(obj, np.ndarray):
        canon = _canonical_array(obj)
        if canon is None:
            h.update(b"A%d:" % obj.ndim + repr(obj.shape).encode())
            for v in obj.ravel().tolist():
                _feed(h, v)
        else:
            kind, arr = canon
            h.update(b"a" + kind.encode() + repr(arr.shape).encode() + b"%d:" % arr.nbytes)
            h.update(arr.tobytes())
    elif isinstance(obj, Mapping):
        items = sorted(obj.items(), key=lambda kv: str(kv[0]))
        h.update(b"{%d:" % len(items))
        for k, v in items:
            _feed(h, str(k))
            _feed(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(b"[%d:" % len(obj))
        for v in obj:
            _feed(h, v)
    elif hasattr(obj, "model_dump"):
        _feed(h, obj.model_dump(mode="json"))
    else:
        raise TypeError(f"cannot fingerprint an object of type {type(obj).__name__}")


def digest(obj: Any) -> str:
    """SHA-256 hex digest of the canonical encoding of ``obj`` (any nesting of plain data and arrays)."""
    h = hashlib.sha256(FORMAT.encode())
    _feed(h, obj)
    return h.hexdigest()


def fingerprint(**parts: Any) -> str:
    """SHA-256 hex digest of the canonical encoding of the keyword arguments (for one-off use)."""
    return digest(parts)


def _column_records(values: Any, n: int) -> np.ndarray:
    """One fixed-width byte record per row, shape ``(n, width)`` uint8, for one column."""
    if len(values) != n:
        raise ValueError(f"per-row columns differ in length ({len(values)} != {n})")
    try:
        a = np.asarray(values)
    except ValueError:  # rows of different shapes: hashed one by one below
        a = np.empty(n, object)
        for i, v in enumerate(values):
            a[i] = v
    canon = _canonical_array(a) if a.ndim == 1 else None
    if canon is not None:
        _, arr = canon
        return arr.view(np.uint8).reshape(n, arr.itemsize)
    # Strings, None and nested values: hash each distinct value once (libraries repeat
    # few labels), then use its 32-byte digest as the record.
    flat = a.tolist() if a.dtype.kind in "US" else [values[i] for i in range(n)]
    cache: dict[tuple, bytes] = {}
    digests = []
    append = digests.append
    sha256 = hashlib.sha256
    for v in flat:
        if type(v) is str:  # the common case (labels, upstream row fingerprints): _feed's encoding inline
            key = ("s", v)
            d = cache.get(key)
            if d is None:
                s = v.encode()
                d = cache[key] = sha256(b"s%d:" % len(s) + s).digest()
            append(d)
            continue
        key = (type(v), v)  # the type keeps 1, 1.0 and True apart
        try:
            d = cache[key]
        except (KeyError, TypeError):
            h = sha256()
            _feed(h, v)
            d = h.digest()
            try:
                cache[key] = d
            except TypeError:  # unhashable values (lists, dicts) are simply not cached
                pass
        append(d)
    return np.frombuffer(b"".join(digests), np.uint8).reshape(n, 32).copy()


class Fingerprinter:
    """Row and chunk fingerprints that hash the shared inputs of a plan only once.

    Parameters
    ----------
    **shared
        Everything every row depends on: code version, configuration sections, grids,
        upstream fingerprints.  Hashed once here.

    Examples
    --------
    >>> fp = Fingerprinter(code="xsec/1", energy=np.geomspace(0.1, 1e4, 41))
    >>> rows = fp.rows(E_p=np.geomspace(0.1, 1e5, 61))    # one hex string per row
    >>> len(rows), len(rows[0])
    (61, 64)
    """

    def __init__(self, **shared: Any) -> None:
        self._h = hashlib.sha256(FORMAT.encode())
        _feed(self._h, shared)

    @property
    def shared(self) -> str:
        """Digest of the shared inputs alone."""
        return self._h.copy().hexdigest()

    def one(self, **parts: Any) -> str:
        """Fingerprint of one piece: the shared inputs plus ``parts``."""
        h = self._h.copy()
        _feed(h, parts)
        return h.hexdigest()

    def chunk(self, start: int, stop: int, **parts: Any) -> str:
        """Chunk-level fingerprint of rows ``[start, stop)`` that share every input but their index."""
        return self.one(start=int(start), stop=int(stop), **parts)

    def rows(self, **columns: Sequence | np.ndarray) -> list[str]:
        """One fingerprint per row from per-row columns of equal length.

        Numeric and boolean columns are encoded by their canonical bytes; string and
        other columns by the digest of each value.  Column names are part of the hash.
        """
        if not columns:
            raise ValueError("rows() needs at least one per-row column")
        names = sorted(columns)
        n = len(columns[names[0]])
        recs = [_column_records(columns[k], n) for k in names]
        header = hashlib.sha256()
        _feed(header, [[k, int(r.shape[1])] for k, r in zip(names, recs)])
        base = self._h.copy()
        base.update(header.digest())
        if n == 0:
            return []
        table = np.ascontiguousarray(np.hstack(recs)) if len(recs) > 1 else np.ascontiguousarray(recs[0])
        width = table.shape[1]
        mv = memoryview(table.reshape(-1))
        out = []
        append = out.append
        copy = base.copy
        for i in range(0, n * width, width):
            h = copy()
            h.update(mv[i : i + width])
            append(h.hexdigest())
        return out


def combine(fingerprints: Iterable[str]) -> str:
    """Fingerprint of an ordered collection of fingerprints (a chunk from its rows)."""
    h = hashlib.sha256()
    h.update("\n".join(fingerprints).encode())
    return h.hexdigest()
