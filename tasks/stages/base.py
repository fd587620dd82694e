"""What every stage provides to the orchestrator: a plan and a pure chunk function."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import dask.array as da
import numpy as np
import xarray as xr

__all__ = ["StagePlan", "Stage", "placeholder", "MissingInputError", "upstream_rows", "upstream_fingerprint"]


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
    compute : callable
        ``compute(start, stop, payload) -> xarray.Dataset`` for rows ``[start, stop)``;
        pure, picklable, run on workers.
    payload : object
        The picklable input handed to ``compute`` (configuration values, input paths).
    """

    template: xr.Dataset
    chunk: int
    row_fingerprints: Sequence[str] | None
    attrs: Mapping[str, Any]
    compute: Callable[[int, int, Any], xr.Dataset]
    payload: Any = None
    notes: list[str] = field(default_factory=list)
    chunk_fingerprint: Callable[[int, int], str] | None = None
    describe: Callable[[list], dict] | None = None

    def __post_init__(self) -> None:
        if (self.row_fingerprints is None) == (self.chunk_fingerprint is None):
            raise ValueError("a plan gives either row_fingerprints or chunk_fingerprint, not both or neither")


@dataclass(frozen=True)
class Stage:
    """A pipeline stage, declared once: its cube, code version, the stages it reads, and its planner.

    Attributes
    ----------
    name : str
        The stage and its cube group (a key of :data:`cube.schema.SCHEMAS`).
    code_version : str
        Part of every chunk fingerprint: bump it when the stage's numbers change.
    inputs : tuple of str
        The stages whose cubes it reads; the run order is derived from them.
    plan : callable
        ``plan(config, store, client) -> StagePlan``.
    """

    name: str
    code_version: str
    inputs: tuple[str, ...]
    plan: Callable[..., StagePlan]

    @property
    def schema(self):
        """The cube's :class:`cube.schema.GroupSchema` (names, dims, units, chunk dim)."""
        from cube.schema import SCHEMAS

        return SCHEMAS[self.name]

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
