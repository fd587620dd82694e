import multiprocessing as mp
import os

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr

import cube
from cube import store as cs
from cube.fingerprint import FORMAT, chunk_keys
from cube.schema import apply_metadata


def _template(n=7):
    ds = xr.Dataset(
        {
            "dsigma_dE": (("E_p", "energy", "messenger"), da.full((n, 3, 2), np.nan, chunks=(3, 3, 2))),
            "sigma_inel": (("E_p",), da.full((n,), np.nan, chunks=(3,))),
        },
        coords={"E_p": np.arange(1.0, n + 1), "energy": [1.0, 2.0, 3.0], "messenger": ["gamma", "nu"]},
    )
    return apply_metadata(ds, "xsec")


def _chunk(key):
    e = np.arange(key.start, key.stop) + 1.0
    return xr.Dataset(
        {
            "dsigma_dE": (("E_p", "energy", "messenger"), np.ones((len(e), 3, 2)) * e[:, None, None]),
            "sigma_inel": (("E_p",), 10 * e),
        },
        coords={"E_p": e, "energy": [1.0, 2.0, 3.0], "messenger": ["gamma", "nu"]},
    )


def test_template_then_regions_round_trip(store):
    cs.setup_group(store, "xsec", _template(), "E_p", 3)
    for key in chunk_keys("xsec", "E_p", 7, 3):
        cs.write_chunk(store, "xsec", key, _chunk(key))
    ds = cube.open(store, "xsec")
    assert ds.dsigma_dE.chunks[0] == (3, 3, 1)  # lazy, one dask chunk per zarr chunk
    np.testing.assert_array_equal(ds.sigma_inel.values, 10 * np.arange(1.0, 8))
    assert ds.dsigma_dE.attrs["units"] == "mb TeV^-1"


def test_wrong_chunk_length_is_refused(store):
    cs.setup_group(store, "xsec", _template(), "E_p", 3)
    key = chunk_keys("xsec", "E_p", 7, 3)[0]
    with pytest.raises(cs.StoreError, match="expected 3"):
        cs.write_chunk(store, "xsec", key, _chunk(chunk_keys("xsec", "E_p", 7, 2)[0]))


def test_ledger_records_and_forgets(store):
    keys = chunk_keys("xsec", "E_p", 7, 3)
    cs.record(store, keys[0], "fp0", ["r0", "r1", "r2"])
    cs.record(store, keys[1], "fp1", ["r3", "r4", "r5"])
    led = cs.read_ledger(store, "xsec")
    assert led[keys[0].name] == {"format": FORMAT, "fingerprint": "fp0", "rows": ["r0", "r1", "r2"], "start": 0}
    cs.forget(store, [keys[0]])
    assert set(cs.read_ledger(store, "xsec")) == {keys[1].name}
    # no temporary files are left behind by the atomic replace
    assert not [p for p in (store / "_ledger" / "xsec").iterdir() if p.suffix == ".tmp"]


def test_open_missing_store_and_group_give_clear_errors(store):
    with pytest.raises(cs.StoreError, match="does not exist"):
        cube.open(store, "xsec")
    cs.setup_group(store, "xsec", _template(), "E_p", 3)
    with pytest.raises(cs.StoreError, match="no 'sky' group.*stardiffuse run --stages sky"):
        cube.open(store, "sky")


def _hold_lock(path, ready, release):
    with cs.store_lock(path):
        ready.set()
        release.wait(30)


def test_lock_refuses_a_second_writer(store):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_lock, args=(store, ready, release))
    p.start()
    try:
        assert ready.wait(30)
        with pytest.raises(cs.StoreLockedError, match=f"pid {p.pid}"):
            with cs.store_lock(store):
                pass
    finally:
        release.set()
        p.join(30)
    with cs.store_lock(store):  # released when the holder ends
        pass


def test_lock_is_released_by_a_killed_holder(store):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_lock, args=(store, ready, release))
    p.start()
    assert ready.wait(30)
    os.kill(p.pid, 9)
    p.join(30)
    with cs.store_lock(store):
        pass


def test_swap_in_staging_replaces_group_and_ledger(store):
    cs.setup_group(store, "xsec", _template(7), "E_p", 3)
    cs.record(store, chunk_keys("xsec", "E_p", 7, 3)[0], "old", ["a"])
    staging = cs.staging_name("xsec")
    cs.setup_group(store, staging, _template(4), "E_p", 3)
    cs.record(store, chunk_keys("xsec", "E_p", 4, 3)[0], "new", ["b"], group=staging)
    cs.swap_in_staging(store, "xsec")
    assert cube.open(store, "xsec").sizes["E_p"] == 4
    assert [e["fingerprint"] for e in cs.read_ledger(store, "xsec").values()] == ["new"]
    assert not (store / staging).exists()


def test_a_chunk_for_the_wrong_rows_is_refused(store):
    cs.setup_group(store, "xsec", _template(), "E_p", 3)
    keys = chunk_keys("xsec", "E_p", 7, 3)
    cs.validate_chunk(store, "xsec", keys[0], _chunk(keys[0]))
    wrong = _chunk(keys[0]).assign_coords(E_p=[10.0, 20.0, 30.0])
    with pytest.raises(cs.StoreError, match="coordinate 'E_p' does not match"):
        cs.validate_chunk(store, "xsec", keys[0], wrong)
    renamed = _chunk(keys[0]).rename({"sigma_inel": "sigma"})
    with pytest.raises(cs.StoreError, match="'sigma' is not in group"):
        cs.validate_chunk(store, "xsec", keys[0], renamed)


def test_a_group_set_up_again_is_read_again_not_from_the_opened_arrays(store):
    """A worker keeps the arrays it opened while their metadata is unchanged; a new group is new."""
    cs.setup_group(store, "xsec", _template(7), "E_p", 3)
    keys = chunk_keys("xsec", "E_p", 7, 3)
    for key in keys:
        cs.validate_chunk(store, "xsec", key, _chunk(key))
        cs.write_chunk(store, "xsec", key, _chunk(key))
    # same metadata bytes, other coordinate values: the coordinates are read from the new group
    cs.setup_group(store, "xsec", _template(7).assign_coords(E_p=np.arange(1.0, 8) * 2), "E_p", 3)
    with pytest.raises(cs.StoreError, match="coordinate 'E_p' does not match"):
        cs.validate_chunk(store, "xsec", keys[0], _chunk(keys[0]))
    # other sizes and chunking: the arrays are opened again, and every chunk lands where it belongs
    cs.setup_group(store, "xsec", _template(4).chunk({"E_p": 2}), "E_p", 2)
    for key in chunk_keys("xsec", "E_p", 4, 2):
        cs.validate_chunk(store, "xsec", key, _chunk(key))
        cs.write_chunk(store, "xsec", key, _chunk(key))
    ds = cube.open(store, "xsec")
    assert ds.sizes["E_p"] == 4 and ds.dsigma_dE.chunks[0] == (2, 2)
    np.testing.assert_array_equal(ds.sigma_inel.values, 10 * np.arange(1.0, 5))
    # a variable removed from the group is missing again, not remembered
    import shutil

    shutil.rmtree(store / "xsec" / "sigma_inel")
    with pytest.raises(cs.StoreError, match="'sigma_inel' is not in group"):
        cs.write_chunk(store, "xsec", chunk_keys("xsec", "E_p", 4, 2)[0], _chunk(chunk_keys("xsec", "E_p", 4, 2)[0]))


def test_a_chunk_with_one_bad_variable_writes_none_of_them(store):
    cs.setup_group(store, "xsec", _template(), "E_p", 3)
    key = chunk_keys("xsec", "E_p", 7, 3)[0]
    bad = _chunk(key).assign(sigma_inel=(("E_p", "energy"), np.ones((3, 3))))  # dims the group lacks
    with pytest.raises(cs.StoreError, match="'sigma_inel' has dims"):
        cs.write_chunk(store, "xsec", key, bad)
    stored = cube.open(store, "xsec").dsigma_dE.isel(E_p=slice(0, 3)).values
    assert np.isnan(stored).all()  # dsigma_dE, checked first, was not written either


def test_an_unreadable_array_metadata_is_one_store_error_naming_it(store):
    cs.setup_group(store, "xsec", _template(), "E_p", 3)
    key = chunk_keys("xsec", "E_p", 7, 3)[0]
    (store / "xsec" / "sigma_inel" / "zarr.json").write_text("{not json")
    with pytest.raises(cs.StoreError, match="cannot read the metadata of 'xsec/sigma_inel'.*delete the group"):
        cs.write_chunk(store, "xsec", key, _chunk(key))


def test_read_rows_gives_numpy_backed_rows(store):
    cs.setup_group(store, "xsec", _template(), "E_p", 3)
    for key in chunk_keys("xsec", "E_p", 7, 3):
        cs.write_chunk(store, "xsec", key, _chunk(key))
    rows = cs.read_rows(store, "xsec", "E_p", np.array([6, 0]))
    assert isinstance(rows.sigma_inel.data, np.ndarray)
    np.testing.assert_array_equal(rows.sigma_inel.values, [70.0, 10.0])


def test_open_loads_small_coordinates_and_keeps_data_lazy(tmp_path):
    from tasks.config import load_preset
    from tasks.runner import run

    d = load_preset("quick").model_dump()
    d["templates"].update(masses=[1.0, 5.0], metallicities=[0.02], radius_points=64,
                          snapshots_per_stage={"MS": 2, "RGB": 1, "CHeB": 1, "EAGB": 1, "TPAGB": 1})
    from tasks.config import Config

    store = tmp_path / "s.zarr"
    run(Config.model_validate(d), store, stages=["templates"])
    ds = cube.open(store, "templates")
    assert not hasattr(ds.stage.data, "dask") and not hasattr(ds.mass_init.data, "dask")
    assert hasattr(ds.rho.data, "dask")  # data stay lazy
    ms = ds.where(ds.stage == "MS", drop=True)
    assert set(ms.stage.values.astype(str)) == {"MS"} and hasattr(ms.rho.data, "dask")
    heavy = ds.sel(model=ds.mass_init > 3)
    assert (heavy.mass_init > 3).all() and heavy.sizes["model"] < ds.sizes["model"]


def test_read_rows_of_named_variables_reads_only_them(store):
    cs.setup_group(store, "xsec", _template(), "E_p", 3)
    for key in chunk_keys("xsec", "E_p", 7, 3):
        cs.write_chunk(store, "xsec", key, _chunk(key))
    every = cs.read_rows(store, "xsec", "E_p", slice(2, 5))
    some = cs.read_rows(store, "xsec", "E_p", slice(2, 5), variables=["sigma_inel"])
    assert set(some.variables) == {"sigma_inel", "E_p"} < set(every.variables)
    np.testing.assert_array_equal(some.sigma_inel.values, [30.0, 40.0, 50.0])
    xr.testing.assert_identical(some.sigma_inel, every.sigma_inel)


def _mixed_template(n=6):
    ds = xr.Dataset(
        {
            "f64": (("row", "col"), da.zeros((n, 3), chunks=(2, 3))),
            "f32": (("row", "col"), da.zeros((n, 3), dtype=np.float32, chunks=(2, 3))),
            "i64": (("row",), da.zeros((n,), dtype=np.int64, chunks=(2,))),
            "flag": (("row",), da.zeros((n,), dtype=bool, chunks=(2,))),
            "label": (("row",), da.full((n,), "", dtype="<U7", chunks=(2,))),
        },
        coords={"row": np.arange(n), "col": [0.5, 1.5, 2.5]},
    )
    ds["f64"].encoding["compressors"] = (zarr.codecs.BloscCodec(cname="lz4", shuffle="shuffle", typesize=8),)
    return ds


def _mixed_chunk(key):
    r = np.arange(key.start, key.stop)
    f = np.where(r[:, None] == 3, np.nan, r[:, None] * 1.1 + np.arange(3.0))
    if key.start == 4:
        f[:] = np.nan  # only the fill value: still written
    return xr.Dataset(
        {
            "f64": (("col", "row"), f.T),  # the group's dims in another order
            "f32": (("row", "col"), f / 3),  # float64 values into a float32 array
            "i64": (("row",), r * 7),
            "flag": (("row",), r % 2 == 0),
            "label": (("row",), np.array([f"m{i}" for i in r], dtype="<U7")),
        },
        coords={"row": r, "col": [0.5, 1.5, 2.5]},
    )


def test_write_chunk_writes_the_bytes_xarray_writes(tmp_path):
    # The reference is xarray's own region write into a twin group set up the same way.
    mine, ref = tmp_path / "mine.zarr", tmp_path / "ref.zarr"
    for s in (mine, ref):
        cs.setup_group(s, "g", _mixed_template(), "row", 2)
    for key in chunk_keys("g", "row", 6, 2):
        chunk = _mixed_chunk(key)
        cs.write_chunk(mine, "g", key, chunk)
        chunk.drop_vars(list(chunk.coords)).to_zarr(
            ref, group="g", region=key.region, mode="r+", consolidated=False, zarr_format=3, write_empty_chunks=True
        )
    for name in ("f64", "f32", "i64", "flag", "label"):
        a = zarr.open_array(mine, path=f"g/{name}", mode="r")
        b = zarr.open_array(ref, path=f"g/{name}", mode="r")
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a[...], b[...])
        files = sorted(p.relative_to(mine / "g" / name) for p in (mine / "g" / name / "c").rglob("*") if p.is_file())
        assert len(files) == 3, name  # every chunk, the one of fill values included
        for f in files:
            assert (mine / "g" / name / f).read_bytes() == (ref / "g" / name / f).read_bytes(), (name, f)
    got = xr.open_zarr(mine, group="g", consolidated=False)
    assert np.isnan(got.f64.values[3:]).all() and not np.isnan(got.f64.values[:3]).any()
    assert list(got.label.values) == [f"m{i}" for i in range(6)]
