import numpy as np
import pytest

from cube.fingerprint import ChunkKey, chunk_keys, combine, fingerprint


def test_same_inputs_same_fingerprint():
    a = fingerprint(code="v1", config={"a": 1.0, "b": [1, 2]}, coords=np.array([1.0, 2.0]))
    b = fingerprint(coords=np.array([1.0, 2.0]), config={"b": [1, 2], "a": 1.0}, code="v1")
    assert a == b


@pytest.mark.parametrize(
    "change",
    [
        {"code": "v2"},
        {"config": {"a": 1.0000000001, "b": [1, 2]}},
        {"config": {"a": 1.0, "b": [1, 2], "c": None}},
        {"coords": np.array([1.0, 2.5])},
        {"upstream": ["abc"]},
    ],
)
def test_any_input_change_changes_fingerprint(change):
    base = dict(code="v1", config={"a": 1.0, "b": [1, 2]}, coords=np.array([1.0, 2.0]))
    assert fingerprint(**base) != fingerprint(**{**base, **change})


def test_int_and_float_config_are_distinct_but_numpy_scalars_are_not():
    assert fingerprint(x=np.float64(2.5)) == fingerprint(x=2.5)
    assert fingerprint(x=np.int64(3)) == fingerprint(x=3)


def test_combine_is_order_sensitive():
    assert combine(["a", "b"]) != combine(["b", "a"])
    assert combine(["a", "b"]) == combine(["a", "b"])


def test_chunk_keys_cover_the_dim_and_are_hashable():
    keys = chunk_keys("xsec", "E_p", 10, 4)
    assert [(k.start, k.stop) for k in keys] == [(0, 4), (4, 8), (8, 10)]
    assert len({*keys, ChunkKey("xsec", "E_p", 0, 4)}) == 3
    assert keys[0].region == {"E_p": slice(0, 4)}
    with pytest.raises(ValueError):
        chunk_keys("xsec", "E_p", 10, 0)
