"""The Zarr v3 store: templates, region writes, the fingerprint ledger, the lock and lazy opening.

The write path follows xarray-beam's small pure steps:

1. a stage builds a *template* (an :class:`xarray.Dataset` whose data variables are lazy
   placeholders and whose coordinates are real);
2. :func:`setup_group` writes the template's metadata and coordinates once;
3. workers call :func:`write_chunk` with one computed chunk (``mode="r+"`` region write);
4. the client records the chunk's fingerprint in the ledger with :func:`record` once the
   write has succeeded.

The ledger lives beside the groups, in ``<store>/_ledger/<group>/<chunk>.json``; each entry
is replaced atomically, so a killed run leaves either the old or the new entry, never half
of one.  A chunk that is about to be rewritten in place loses its entry first, so an
interrupted run leaves it stale.

What ``xarray.open_datatree(store, engine="zarr")`` sees is the root's consolidated metadata,
which lists the stage groups only: the bookkeeping beside them (the ledger ``_ledger/``, derived
inputs ``_cache/``, the lock file, groups being rebuilt ``_staging_*``) is never in it.  It is
rewritten whenever a stage group's metadata changes (:func:`group_attrs_update`,
:func:`swap_in_staging`) and removed just before such a change, so at every instant it is
either right or absent; without it, readers list the directories and see the bookkeeping
(:func:`hierarchy_problems` names it, ``stardiffuse.open_tree`` reads a store in any state).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import warnings

import numpy as np
import xarray as xr
import zarr
from zarr.core.sync import sync as zsync
from zarr.errors import UnstableSpecificationWarning

from cube.fingerprint import FORMAT, ChunkKey

__all__ = [
    "StoreLockedError",
    "StoreError",
    "store_lock",
    "setup_group",
    "write_chunk",
    "validate_chunk",
    "open",
    "open_group_if_exists",
    "read_rows",
    "read_ledger",
    "record",
    "forget",
    "staging_name",
    "swap_in_staging",
    "drop_group",
    "consolidate",
    "layout_signature",
    "group_attrs_update",
    "cache_path",
    "write_atomic",
    "stage_groups",
    "hierarchy_problems",
]

# Label coordinates (messenger, stage, region names) are stored as strings, which zarr-python
# reads back faithfully but flags as not yet in the Zarr v3 specification.
warnings.filterwarnings("ignore", category=UnstableSpecificationWarning)

LEDGER = "_ledger"
LOCK_FILE = ".stardiffuse.lock"
DIRTY_FILE = "_ledger/DIRTY"
STAGING_PREFIX = "_staging_"
#: 1-D coordinates up to this size [bytes] are loaded by :func:`open`; larger ones stay lazy.
COORD_LOAD_LIMIT = 64 * 2**20


class StoreError(RuntimeError):
    """A store cannot be read or written as asked (message says what, where and how to fix)."""


class StoreLockedError(StoreError):
    """Another process holds the store's write lock."""


@contextlib.contextmanager
def store_lock(store: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive write lock of ``store`` for the duration of the block.

    The lock is an ``flock`` on ``<store>/.stardiffuse.lock``: the kernel releases it when
    the holder dies, even by SIGKILL, so a killed run never leaves a stale lock behind.

    Raises
    ------
    StoreLockedError
        If another process already holds it; the message names that process.
    """
    root = Path(store)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "another process"
            raise StoreLockedError(
                f"store {root} is being written by {holder}; wait for that run to finish "
                f"or use another --store"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        yield root
    finally:
        os.close(fd)


def _ledger_dir(store: str | os.PathLike, group: str) -> Path:
    return Path(store) / LEDGER / group


def read_ledger(store: str | os.PathLike, group: str) -> dict[str, dict]:
    """Return ``{chunk name: {"format", "fingerprint", "rows", "start"}}`` recorded for ``group``.

    ``format`` is the fingerprint encoding (:data:`cube.fingerprint.FORMAT`) the entry was
    made with; entries written before formats were recorded have none.
    """
    d = _ledger_dir(store, group)
    out: dict[str, dict] = {}
    if not d.is_dir():
        return out
    for f in d.glob("*.json"):
        try:
            out[f.stem] = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            # An unreadable entry is as good as none: the chunk is recomputed.
            continue
    return out


def record(
    store: str | os.PathLike,
    key: ChunkKey,
    fingerprint: str,
    rows: list[str],
    *,
    group: str | None = None,
    start: int | None = None,
) -> None:
    """Atomically record that chunk ``key`` now holds data with ``fingerprint`` (client only).

    ``rows`` are the row fingerprints of the chunk, stored so that a later run whose
    layout changed can find each row again; ``start`` is the chunk's first row index.
    """
    d = _ledger_dir(store, group or key.group)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{key.name}.{os.getpid()}.tmp"
    entry = {"format": FORMAT, "fingerprint": fingerprint, "rows": rows, "start": key.start if start is None else start}
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, d / f"{key.name}.json")


def forget(store: str | os.PathLike, keys: list[ChunkKey], *, group: str | None = None) -> None:
    """Remove the ledger entries of ``keys`` before their chunks are rewritten in place."""
    for key in keys:
        with contextlib.suppress(FileNotFoundError):
            (_ledger_dir(store, group or key.group) / f"{key.name}.json").unlink()


def cache_path(store: str | os.PathLike, kind: str, name: str) -> Path:
    """Where a stage caches a derived input in the store: ``<store>/_cache/<kind>/<name>``."""
    return Path(store) / "_cache" / kind / name


def write_atomic(path: Path, write) -> None:
    """Create ``path`` with ``write(tmp_path)`` through a temporary file, so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # keeps the suffix (np.save needs it)
    write(tmp)
    os.replace(tmp, path)


def _mark_dirty(store: str | os.PathLike) -> None:
    p = Path(store) / DIRTY_FILE
    p.parent.mkdir(parents=True, exist_ok=True)
    p.touch()


def _is_bookkeeping(name: str) -> bool:
    """Whether a top-level name of the store is bookkeeping (ledger, cache, staging, lock), not a cube."""
    return name.startswith(("_", "."))


def _drop_consolidated(store: str | os.PathLike) -> None:
    """Remove the root's consolidated metadata before a stage group's metadata changes.

    Readers then list the groups themselves (correct, if slower) until :func:`consolidate`
    writes it again, instead of trusting a listing that is about to be stale.
    """
    root = Path(store) / "zarr.json"
    try:
        meta = json.loads(root.read_text())
    except (OSError, json.JSONDecodeError):
        return
    if meta.pop("consolidated_metadata", None) is not None:
        write_atomic(root, lambda tmp: tmp.write_text(json.dumps(meta)))


def open_group_if_exists(store: str | os.PathLike, group: str, *, dask: bool = True) -> xr.Dataset | None:
    """Lazily open ``group`` without consolidated metadata, or return ``None`` if it is absent.

    ``dask=False`` opens it lazily without dask (values are read on access): planners use it,
    since the first dask computation in a process imports ``distributed`` (a few tenths of a
    second) to look for a client.
    """
    if not (Path(store) / group / "zarr.json").exists():
        return None
    if dask:
        return xr.open_zarr(os.fspath(store), group=group, consolidated=False, zarr_format=3)
    return xr.open_zarr(os.fspath(store), group=group, consolidated=False, zarr_format=3, chunks=None)


def read_rows(
    store: str | os.PathLike, group: str, dim: str, rows, variables: Iterable[str] | None = None
) -> xr.Dataset:
    """Read rows of ``group`` along ``dim`` into memory without dask (for use inside workers).

    ``rows`` is a slice or an integer index array.  Opening without dask matters on a
    worker: a dask-backed ``load()`` there would schedule sub-tasks on the cluster and wait
    for them from inside a task.  ``variables`` (names of variables or coordinates) limits
    what is read to them and the index coordinates of their dims; default everything.
    """
    ds = xr.open_zarr(os.fspath(store), group=group, consolidated=False, zarr_format=3, chunks=None)
    if variables is not None:
        names = set(variables)
        keep = names | {d for n in names for d in ds[n].dims}
        ds = ds.drop_vars([k for k in ds.variables if k not in keep])
    return ds.isel({dim: rows}).load()


def layout_signature(ds: xr.Dataset, chunk_dim: str, chunk: int) -> dict:
    """What must match for chunks to be rewritten in place: names, dims, sizes, index coords, chunking."""
    return {
        "vars": {k: [list(v.dims), str(v.dtype)] for k, v in sorted(ds.data_vars.items())},
        "sizes": dict(sorted(ds.sizes.items())),
        "index": {
            k: np.asarray(ds[k].values).tolist() for k in sorted(ds.dims) if k in ds.coords and k != chunk_dim
        },
        "chunk": chunk,
    }


def setup_group(
    store: str | os.PathLike, group: str, template: xr.Dataset, chunk_dim: str, chunk: int
) -> None:
    """Write the metadata and coordinates of ``template`` as a fresh group (overwriting it).

    Data variables must be dask arrays chunked ``chunk`` along ``chunk_dim`` and whole
    along every other dim; nothing but coordinates and metadata is written.  A data
    variable's codec is zarr's default (zstd) unless the template sets
    ``encoding["compressors"]`` on it; the group keeps it for every chunk written later.
    """
    _mark_dirty(store)
    encoding = {}
    for name, var in template.data_vars.items():
        chunks = tuple(chunk if d == chunk_dim else template.sizes[d] for d in var.dims)
        encoding[name] = {"chunks": chunks}
        if "compressors" in var.encoding:
            encoding[name]["compressors"] = var.encoding["compressors"]
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(Path(store) / group)
    shutil.rmtree(_ledger_dir(store, group), ignore_errors=True)
    template.to_zarr(
        os.fspath(store),
        group=group,
        mode="w",
        compute=False,
        consolidated=False,
        zarr_format=3,
        encoding=encoding,
        write_empty_chunks=True,
    )


#: Arrays this process has opened, by (store, path, mode) with the bytes of their ``zarr.json``:
#: an array whose metadata file still holds those bytes is the same array, and reusing it
#: saves zarr's ~0.5 ms of reading and parsing per array per chunk.
_OPENED: dict[tuple[str, str, str], tuple[bytes, object]] = {}


async def _open_arrays(store: str | os.PathLike, group: str, names: list[str], mode: str) -> list:
    """The arrays ``group/name`` of ``store`` (``None`` for a name that is no array), opened concurrently.

    zarr-python reads each array's metadata through its event loop; one gathered call costs
    about what two sequential ones do, and a chunk touches up to ~25 arrays.  An array whose
    ``zarr.json`` is byte for byte the one this process opened before is not opened again.
    """
    from zarr.api.asynchronous import open_array
    from zarr.storage import LocalStore

    root = os.path.abspath(store)
    local = None

    async def one(name: str):
        nonlocal local
        path = f"{group}/{name}"
        try:
            meta = (Path(root) / path / "zarr.json").read_bytes()
        except OSError:
            return None
        known = _OPENED.get((root, path, mode))
        if known is not None and known[0] == meta:
            return known[1]
        if local is None:
            local = LocalStore(root, read_only=mode == "r")
        try:
            arr = await open_array(store=local, path=path, mode=mode, zarr_format=3)
        except (FileNotFoundError, zarr.errors.ArrayNotFoundError, zarr.errors.NodeTypeValidationError):
            return None  # gone since, or a group of that name
        except Exception as exc:
            raise StoreError(
                f"cannot read the metadata of {path!r} in store {root} ({type(exc).__name__}: {exc}): "
                f"delete the group {group!r} (or the store) and rerun"
            ) from exc
        if len(_OPENED) > 4096:  # a long-lived worker that saw many stores
            _OPENED.clear()
        _OPENED[(root, path, mode)] = (meta, arr)
        return arr

    return list(await asyncio.gather(*(one(n) for n in names)))


def _stored(arr, group: str, key: ChunkKey, name: str) -> tuple:
    """``arr`` (an opened array or ``None``) and its dims, or a :class:`StoreError` naming what is missing."""
    if arr is None:
        raise StoreError(f"chunk {key.name}: variable {name!r} is not in group {group!r}")
    return arr, tuple(arr.metadata.dimension_names or ())


def write_chunk(store: str | os.PathLike, group: str, key: ChunkKey, chunk: xr.Dataset) -> ChunkKey:
    """Write one computed chunk into its region of ``group`` (an existing group); runs on workers.

    Only data variables spanning the chunked dim are written: coordinates were written
    with the template, and rewriting them here would make workers read-modify-write the
    same coordinate chunk concurrently.  Each variable goes straight to its zarr array,
    in the array's dim order and dtype, with the codec the group was set up with: the same
    bytes as ``Dataset.to_zarr(region=...)`` writes (these groups hold no CF-encoded
    variables), without its per-call reading of the group's metadata.  The arrays are
    opened and written in one gathered zarr call.  Every chunk file is written, including
    one holding only the fill value.  Returns ``key`` so that the client can record the
    fingerprint.
    """
    if chunk.sizes.get(key.dim) != len(key):
        raise StoreError(
            f"chunk {key.name} of {group!r} has {chunk.sizes.get(key.dim)} rows along {key.dim!r}, "
            f"expected {len(key)}"
        )
    names = [name for name, var in chunk.data_vars.items() if key.dim in var.dims]
    region = key.region

    async def write() -> None:
        # every variable is checked before the first byte is written
        targets = []
        for name, arr in zip(names, await _open_arrays(store, group, names, "r+")):
            arr, dims = _stored(arr, group, key, name)
            var = chunk[name]
            if set(dims) != set(var.dims):
                raise StoreError(f"chunk {key.name}: {name!r} has dims {var.dims}, the group has {dims}")
            data = np.asarray(var.transpose(*dims).values)
            if data.dtype != arr.dtype:
                data = data.astype(arr.dtype)
            targets.append((arr, tuple(region.get(d, slice(None)) for d in dims), data))
        await asyncio.gather(*(a.with_config({"write_empty_chunks": True}).setitem(sel, d) for a, sel, d in targets))

    zsync(write())
    return key


def validate_chunk(store: str | os.PathLike, group: str, key: ChunkKey, chunk: xr.Dataset) -> None:
    """Check a computed chunk against the stored template before it is written.

    Every coordinate of ``chunk`` along the chunked dim must equal the template's values in
    that region, and every data variable must exist in the group with the same dims, so a
    chunk computed for the wrong rows or with the wrong layout is never written.  The arrays
    are opened and the coordinates read in one gathered zarr call (a chunk is checked on
    every write, and holds up to ~18 such coordinates).
    """
    data_names = list(chunk.data_vars)
    coord_names = [name for name, coord in chunk.coords.items() if coord.dims == (key.dim,)]

    async def check() -> list:
        arrays = await _open_arrays(store, group, data_names + coord_names, "r")
        for name, arr in zip(data_names, arrays):
            _, stored_dims = _stored(arr, group, key, name)
            if stored_dims != tuple(chunk[name].dims):
                raise StoreError(f"chunk {key.name}: {name!r} has dims {chunk[name].dims}, the group has {stored_dims}")
        present = [(name, arr) for name, arr in zip(coord_names, arrays[len(data_names):]) if arr is not None]
        values = await asyncio.gather(*(arr.getitem(slice(key.start, key.stop)) for _, arr in present))
        return [(name, value) for (name, _), value in zip(present, values)]

    for name, stored in zsync(check()):
        if not np.array_equal(np.asarray(stored), chunk.coords[name].values):
            raise StoreError(f"chunk {key.name}: coordinate {name!r} does not match the template's rows")


def _same_attrs(stored: Mapping, attrs: Mapping) -> bool:
    try:
        return all(k in stored and stored[k] == json.loads(json.dumps(v)) for k, v in attrs.items())
    except (TypeError, ValueError):  # not plain JSON (numpy scalars): written as zarr encodes them
        return False


def group_attrs_update(store: str | os.PathLike, group: str, attrs: Mapping) -> None:
    """Replace the user attributes of ``group`` (client only, at the end of a stage).

    For a stage group the root's consolidated metadata is rewritten too, so that
    ``xarray.open_datatree`` sees the new attributes even if the run stops before its end.
    """
    g = zarr.open_group(os.fspath(store), path=group, mode="r+", zarr_format=3)
    attrs = dict(attrs)
    if _same_attrs(g.attrs, attrs):
        return  # nothing changes (a rerun with nothing to do)
    _mark_dirty(store)
    visible = not _is_bookkeeping(group)
    if visible:
        _drop_consolidated(store)
    g.attrs.update(attrs)
    if visible:
        consolidate(store, clean=False)


def staging_name(group: str) -> str:
    """Name of the group a stage builds when the layout of ``group`` changed."""
    return f"{STAGING_PREFIX}{group}"


def drop_group(store: str | os.PathLike, group: str) -> None:
    """Delete ``group`` and its ledger (used for leftover staging groups)."""
    _mark_dirty(store)
    shutil.rmtree(Path(store) / group, ignore_errors=True)
    shutil.rmtree(_ledger_dir(store, group), ignore_errors=True)


def swap_in_staging(store: str | os.PathLike, group: str) -> None:
    """Replace ``group`` by its completed staging group (data and ledger).

    The old group is moved aside first and deleted last, so at every instant either the
    old or the new complete group is under ``group``'s name or aside for the next run.
    """
    _mark_dirty(store)
    _drop_consolidated(store)
    root = Path(store)
    staging = staging_name(group)
    old = root / f"{STAGING_PREFIX}old_{group}"
    old_ledger = _ledger_dir(store, f"{STAGING_PREFIX}old_{group}")
    for p in (old, old_ledger):
        shutil.rmtree(p, ignore_errors=True)
    if (root / group).exists():
        os.replace(root / group, old)
    if _ledger_dir(store, group).exists():
        os.replace(_ledger_dir(store, group), old_ledger)
    os.replace(root / staging, root / group)
    if _ledger_dir(store, staging).exists():
        os.replace(_ledger_dir(store, staging), _ledger_dir(store, group))
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(old_ledger, ignore_errors=True)


def consolidate(store: str | os.PathLike, clean: bool = True) -> None:
    """Consolidate the metadata of the stage groups into the root (client only).

    Called at the end of a run (``clean=True``: the store is marked clean for :func:`open`)
    and after a stage group's metadata changed.  Groups being rebuilt (``_staging_*``) are left
    out, so ``xarray.open_datatree`` shows exactly the stage groups.
    """
    root = Path(store)
    with warnings.catch_warnings():
        # The ledger and the lock file sit beside the groups on purpose, and consolidated
        # metadata is a zarr-python extension of v3: both are expected here.
        warnings.filterwarnings("ignore", message=".*not recognized as a component.*")
        warnings.filterwarnings("ignore", message=".*Consolidated metadata is currently not part.*")
        if not (root / "zarr.json").exists():
            zarr.open_group(os.fspath(root), mode="a", zarr_format=3)
        zarr.consolidate_metadata(os.fspath(root), zarr_format=3)
    meta = json.loads((root / "zarr.json").read_text())
    inner = (meta.get("consolidated_metadata") or {}).get("metadata") or {}
    hidden = [k for k in inner if _is_bookkeeping(k.split("/", 1)[0])]
    if hidden:
        for k in hidden:
            del inner[k]
        write_atomic(root / "zarr.json", lambda tmp: tmp.write_text(json.dumps(meta)))
    if clean:
        with contextlib.suppress(FileNotFoundError):
            (root / DIRTY_FILE).unlink()


def stage_groups(store: str | os.PathLike) -> list[str]:
    """Names of the cube groups in ``store`` (bookkeeping and groups being rebuilt left out), sorted."""
    root = Path(store)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "zarr.json").exists() and not _is_bookkeeping(p.name))


def hierarchy_problems(store: str | os.PathLike) -> list[str]:
    """What ``xarray.open_datatree(store, engine="zarr")`` would trip over, as sentences; empty if nothing.

    A store whose root lists exactly its stage groups (consolidated metadata written by a run that
    finished) opens as a tree of those groups.  Otherwise readers list the directory, and the
    bookkeeping beside the groups shows up (a warning per folder, ``_staging_*`` groups as nodes).
    """
    root = Path(store)
    if not (root / "zarr.json").exists():
        return [f"store {root} has no root group (zarr.json); run `stardiffuse run --store {root}` first"]
    meta = json.loads((root / "zarr.json").read_text())
    inner = (meta.get("consolidated_metadata") or {}).get("metadata")
    if inner is None:
        return [f"store {root} has no consolidated metadata (a run is in progress or was interrupted): "
                "readers list its folders and see the bookkeeping beside the cubes; rerun `stardiffuse run` to finish it"]
    out = []
    listed = {k.split("/", 1)[0] for k in inner}
    hidden = sorted(n for n in listed if _is_bookkeeping(n))
    if hidden:
        out.append(f"store {root} lists bookkeeping groups {', '.join(hidden)} (a store of an older version); "
                   "rerun `stardiffuse run` to rewrite its metadata")
    missing = sorted(set(stage_groups(root)) - listed)
    if missing:
        out.append(f"store {root}'s consolidated metadata misses {', '.join(missing)}; rerun `stardiffuse run` to rewrite it")
    return out


def open(store: str | os.PathLike, group: str) -> xr.Dataset:  # noqa: A001 - the public name
    """Open one cube group lazily (dask-backed) for slicing in a notebook.

    Consolidated metadata is used only when the last run finished cleanly; after an
    interrupted run the group's own metadata is read instead.

    Parameters
    ----------
    store : path
        The Zarr v3 store (``./stardiffuse.zarr`` by default in the CLI).
    group : str
        One of ``xsec``, ``templates``, ``yields``, ``emissivity``, ``sky``, ``sed``.

    Raises
    ------
    StoreError
        If the store or the group does not exist.
    """
    root = Path(store)
    if not root.exists():
        raise StoreError(f"store {root} does not exist; run `stardiffuse run --store {root}` first")
    if not (root / group / "zarr.json").exists():
        present = sorted(
            p.name for p in root.iterdir() if (p / "zarr.json").exists() and not p.name.startswith("_")
        )
        raise StoreError(
            f"store {root} has no {group!r} group (it has: {', '.join(present) or 'none'}); "
            f"run `stardiffuse run --stages {group}`"
        )
    clean = (root / "zarr.json").exists() and not (root / DIRTY_FILE).exists()
    ds = xr.open_zarr(os.fspath(root), group=group, consolidated=clean or False, zarr_format=3)
    # Small 1-D coordinates (per model, per pixel, per region) in memory, data variables lazy:
    # xarray refuses boolean indexing with a dask array, so `ds.where(ds.stage == "MS",
    # drop=True)` and `ds.sel(model=ds.mass_init > 3)` need them loaded.
    small = {k: v.load() for k, v in ds.coords.items() if v.ndim == 1 and v.nbytes <= COORD_LOAD_LIMIT and v.chunks}
    return ds.assign_coords(small) if small else ds
