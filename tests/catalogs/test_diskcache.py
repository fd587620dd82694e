"""The per-machine table cache: built once, read back bit for bit, rebuilt when unreadable."""
import numpy as np
import pytest

from catalogs.diskcache import cache_directory, cached_array


def _counting_builder(value):
    calls = []

    def build():
        calls.append(1)
        return np.arange(12, dtype=float).reshape(3, 4) * value

    return build, calls


def test_second_call_reads_what_the_first_built(tmp_path):
    build, calls = _counting_builder(1.5)
    first = cached_array(tmp_path, "t", {"v": 1}, build)
    second = cached_array(tmp_path, "t", {"v": 1}, build)
    assert len(calls) == 1
    assert second.dtype == first.dtype and np.array_equal(second, first)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_another_key_is_another_entry(tmp_path):
    build, calls = _counting_builder(2.0)
    cached_array(tmp_path, "t", {"v": 1}, build)
    cached_array(tmp_path, "t", {"v": 2}, build)
    assert len(calls) == 2 and len(list(tmp_path.glob("t-*.npy"))) == 2


def test_a_name_keeps_its_newest_entries(tmp_path):
    """A third key evicts the oldest entry of the name, not the others' or another name's."""
    import os

    from cube.fingerprint import digest

    build, calls = _counting_builder(1.0)
    cached_array(tmp_path, "other", {"v": 0}, build)
    for v in (1, 2, 3):
        if v == 3:  # mtimes in the order written, whatever the file system's clock resolution
            for old in (1, 2):
                os.utime(tmp_path / f"t-{digest({'v': old})[:20]}.npy", ns=(old * 10**9, old * 10**9))
        cached_array(tmp_path, "t", {"v": v}, build)
    assert sorted(p.name for p in tmp_path.glob("t-*.npy")) == sorted(
        f"t-{digest({'v': v})[:20]}.npy" for v in (2, 3))
    assert len(list(tmp_path.glob("other-*.npy"))) == 1
    cached_array(tmp_path, "t", {"v": 3}, build)
    cached_array(tmp_path, "t", {"v": 2}, build)
    assert len(calls) == 4  # 2 and 3 read back
    cached_array(tmp_path, "t", {"v": 1}, build)
    assert len(calls) == 5  # 1 was evicted: built again


def test_unreadable_entry_is_rebuilt_with_a_warning(tmp_path):
    build, calls = _counting_builder(3.0)
    cached_array(tmp_path, "t", {"v": 1}, build)
    (entry,) = tmp_path.glob("t-*.npy")
    entry.write_bytes(b"not an array")
    with pytest.warns(UserWarning, match="unreadable cache entry"):
        again = cached_array(tmp_path, "t", {"v": 1}, build)
    assert len(calls) == 2 and np.array_equal(again, np.arange(12.0).reshape(3, 4) * 3.0)
    assert np.array_equal(np.load(entry), again)  # and written back whole


def test_pickled_objects_are_never_loaded(tmp_path):
    build, calls = _counting_builder(1.0)
    cached_array(tmp_path, "t", {"v": 1}, build)
    (entry,) = tmp_path.glob("t-*.npy")
    np.save(entry, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.warns(UserWarning, match="unreadable cache entry"):
        cached_array(tmp_path, "t", {"v": 1}, build)
    assert len(calls) == 2


def test_no_directory_builds_every_time():
    build, calls = _counting_builder(1.0)
    cached_array(None, "t", {"v": 1}, build)
    cached_array(None, "t", {"v": 1}, build)
    assert len(calls) == 2


def test_cache_directory_follows_numba(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert cache_directory(__file__) == tmp_path
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert cache_directory(__file__).name == "__pycache__"


def test_opacity_table_from_the_cache_is_the_table_rm_tables_gives(tmp_path, monkeypatch):
    """The cached table is bit for bit what the 63 rm-tables evaluations give (a fresh build)."""
    from catalogs.stellar import opacity

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    opacity.opacity_table.cache_clear()
    try:
        built = opacity.opacity_table()  # empty cache directory: built and saved
        opacity.opacity_table.cache_clear()
        import rm_tables

        with monkeypatch.context() as m:
            m.setattr(rm_tables, "opacity", None)  # a second build would fail
            loaded = opacity.opacity_table()  # read back from the file
        assert len(list(tmp_path.glob("opacity-*.npy"))) == 1
    finally:
        opacity.opacity_table.cache_clear()
    assert loaded is not built
    assert loaded.shape == (7, 9, 480, 73)
    np.testing.assert_array_equal(loaded, built)
    # and the build itself is rm-tables at the nodes: one node checked independently
    import rm_tables

    i, j, it, ir = 5, 6, 200, 40  # X = 0.7, Z = 0.02
    T = 10.0 ** opacity.LOG_T_AXIS[it]
    rho = 10.0 ** opacity.LOG_R_AXIS[ir] * (T / 1e6) ** 3
    k = rm_tables.opacity(X=0.7, Z=0.02, cold="ferguson", opal_set="GS98hz")
    assert loaded[i, j, it, ir] == pytest.approx(np.log10(float(k(np.array([T]), np.array([rho]))[0])), rel=1e-12)
