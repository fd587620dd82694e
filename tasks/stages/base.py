"""What every stage provides to the orchestrator: one declaration (:class:`Stage`) and its plans."""

from __future__ import annotations

from dataclasses import dataclass, field, is_dataclass
from typing import Any, Callable, Mapping, Sequence

import dask.array as da
import numpy as np
import xarray as xr

from cube.schema import GroupSchema

__all__ = [
    "StagePlan",
    "Stage",
    "placeholder",
    "MissingInputError",
    "NotPreparedError",
    "upstream_rows",
    "upstream_fingerprint",
]


@dataclass(frozen=True)
class StagePlan:
    """Everything the orchestrator needs to bring one cube group up to date.

    Attributes
    ----------
    template : xarray.Dataset
        Coordinates and metadata of the whole group; data variables are lazy
        placeholders (see :func:`placeholder`) chunked ``chunk`` along ``chunk_dim``.
    chunk : int
        Rows per chunk along the stage's chunked dim.
    row_fingerprints : list of str or None
        One fingerprint per row of the chunked dim (everything that row depends on);
        rows let a rerun whose layout changed copy every row still wanted.
    describe : callable, optional
        ``describe(computed_keys) -> dict`` of work counters for the run summary (for
        example the stars a Monte Carlo sampled).
    chunk_fingerprint : callable, optional
        ``chunk_fingerprint(start, stop) -> str``, used instead of row fingerprints where
        the rows of a chunk cannot differ in their inputs (pixels of a map); such chunks
        are recomputed, not copied, when the layout changes.
    attrs : mapping
        Group attributes (configuration section, code version, calibration, ...).
    payload : object
        The input handed to the stage's ``compute``: an instance of its ``Stage.payload``.
    cost : callable, optional
        ``cost(start, stop) -> float``, the expected work of a chunk in any unit (say models a
        kernel computes): chunks to compute are handed out largest first, so that a long one
        does not start last while the other workers idle.  Only the order depends on it.
    """

    template: xr.Dataset
    chunk: int
    row_fingerprints: Sequence[str] | None
    attrs: Mapping[str, Any]
    payload: Any
    notes: list[str] = field(default_factory=list)
    chunk_fingerprint: Callable[[int, int], str] | None = None
    describe: Callable[[list], dict] | None = None
    cost: Callable[[int, int], float] | None = None

    def __post_init__(self) -> None:
        if (self.row_fingerprints is None) == (self.chunk_fingerprint is None):
            raise ValueError("a plan gives either row_fingerprints or chunk_fingerprint, not both or neither")


@dataclass(frozen=True)
class Stage:
    """A pipeline stage, declared once in its module as ``STAGE``.

    The stage package finds every module that declares one (:mod:`tasks.stages`), registers
    its schema with :func:`cube.schema.register` and derives the run order from ``inputs``.

    Attributes
    ----------
    name : str
        The stage and its cube group.
    code_version : str
        Part of every chunk fingerprint: bump it when the stage's numbers change.
    inputs : tuple of str
        The stages whose cubes it reads; the run order is derived from them.
    schema : cube.schema.GroupSchema
        The cube it writes: names, dims, units, and the dim its chunks run along.
    payload : type
        The frozen dataclass ``compute`` takes (picklable: it is sent to the workers).
    compute : callable
        ``compute(start, stop, payload) -> xarray.Dataset`` for rows ``[start, stop)`` of the
        chunked dim; pure, picklable, run on workers.
    plan : callable
        ``plan(config, store, client) -> StagePlan``: cheap (``status`` calls it). It reads
        the configuration, upstream cubes and ledgers, and what ``prepare`` cached; if that
        cache is missing it raises :class:`NotPreparedError`.
    prepare : callable, optional
        ``prepare(config, store, client) -> None``: the expensive derived inputs (evolved
        tracks, a calibration), computed and cached in the store. The runner calls it
        before ``plan`` when the stage runs; ``status`` never does.
    rank : int
        Where the stage sorts among stages its inputs leave unordered (run order and the
        order of ``status``; ties by name).
    warm : callable, optional
        ``warm(on_workers) -> None``: load in this process what the stage's first chunk
        (``on_workers=True``) or its ``prepare`` and ``plan`` on the client (``False``) would
        otherwise load first: heavy imports, compiled kernels from numba's cache, tables. It
        computes nothing that is kept; :mod:`tasks.warm` runs it in a background thread as a
        cluster starts, so that it overlaps the time a process waits.
    """

    name: str
    code_version: str
    inputs: tuple[str, ...]
    schema: GroupSchema
    payload: type
    compute: Callable[[int, int, Any], xr.Dataset]
    plan: Callable[..., "StagePlan"]
    prepare: Callable[..., None] | None = None
    rank: int = 0
    warm: Callable[[bool], None] | None = None

    def __post_init__(self) -> None:
        if self.schema.name != self.name:
            raise ValueError(f"stage {self.name!r} declares the schema of group {self.schema.name!r}")
        if not (is_dataclass(self.payload) and self.payload.__dataclass_params__.frozen):
            raise TypeError(f"stage {self.name!r}: the payload type must be a frozen dataclass")

    @property
    def chunk_dim(self) -> str:
        """The dim the stage's chunks run along, from its schema."""
        return self.schema.chunk_dim


def placeholder(shape: tuple[int, ...], chunks: tuple[int, ...], dtype=np.float64) -> da.Array:
    """A lazy NaN-filled (zero for integers) array used as a template variable (never computed)."""
    fill = np.nan if np.dtype(dtype).kind == "f" else 0
    return da.full(shape, fill, chunks=chunks, dtype=dtype)


class MissingInputError(FileNotFoundError):
    """An upstream cube this stage reads is absent or incomplete."""


class NotPreparedError(RuntimeError):
    """A plan needs what the stage's ``prepare`` caches, and it is not cached for this configuration."""


def upstream_rows(store, group: str, size: int) -> list[str]:
    """Row fingerprints of an upstream cube, in row order, from its ledger.

    Raises
    ------
    MissingInputError
        If any row has no recorded fingerprint (the upstream stage did not finish).
    """
    from cube import store as cstore

    rows: list[str | None] = [None] * size
    for entry in cstore.read_ledger(store, group).values():
        for i, fp in enumerate(entry.get("rows", [])):
            if entry["start"] + i < size:
                rows[entry["start"] + i] = fp
    if any(r is None for r in rows):
        raise MissingInputError(f"the {group} cube is incomplete; run the {group} stage first")
    return rows  # type: ignore[return-value]


def upstream_fingerprint(store, group: str) -> str:
    """Fingerprint of a whole upstream cube: its chunk fingerprints in chunk order."""
    from cube import store as cstore
    from cube.fingerprint import combine

    ledger = cstore.read_ledger(store, group)
    if not ledger:
        raise MissingInputError(f"run the {group} stage first")
    return combine(e["fingerprint"] for _, e in sorted(ledger.items()))
