import subprocess
import sys

import numpy as np
import pytest

from cube.fingerprint import ChunkKey, Fingerprinter, chunk_keys, combine, digest, fingerprint

GRID = np.geomspace(1e-7, 1.0, 400)
CONFIG = {"alpha_mlt": 1.8, "cr": {"norm": 8.63e-6, "indices": [2.6, 2.85, 2.51, 3.5]}, "mode": "hawc"}


def _plan(grid=GRID, config=CONFIG, upstream=("a" * 64, "b" * 64), mass=(0.1, 1.0, 2.5), stage=("MS", "RGB", "MS")):
    fp = Fingerprinter(code="templates/1", grid=grid, config=config, upstream=list(upstream))
    return fp.rows(mass=np.asarray(mass), stage=np.asarray(stage))


# The same plan computed in a fresh interpreter: no state of this process (hash seeds,
# caches, import order) may leak into a fingerprint.
_SCRIPT = """
import numpy as np, json
from cube.fingerprint import Fingerprinter, digest
fp = Fingerprinter(code="templates/1", grid=np.geomspace(1e-7, 1.0, 400),
    config={"mode": "hawc", "cr": {"indices": [2.6, 2.85, 2.51, 3.5], "norm": 8.63e-6}, "alpha_mlt": 1.8},
    upstream=["a" * 64, "b" * 64])
rows = fp.rows(stage=np.array(["MS", "RGB", "MS"]), mass=np.array([0.1, 1.0, 2.5]))
print(json.dumps({"rows": rows, "digest": digest({"x": [1, 2.5, None, "s"]})}))
"""


def test_equal_across_processes():
    import json

    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True)
    other = json.loads(out.stdout)
    assert other["rows"] == _plan()
    assert other["digest"] == digest({"x": [1, 2.5, None, "s"]})


@pytest.mark.parametrize("i", [0, 1, 199, 398, 399])
def test_any_single_element_of_a_shared_array_matters(i):
    grid = GRID.copy()
    grid[i] = np.nextafter(grid[i], 2.0)  # one ulp
    new, old = _plan(grid=grid), _plan()
    assert all(a != b for a, b in zip(new, old))


@pytest.mark.parametrize(
    "config",
    [
        {**CONFIG, "alpha_mlt": 1.8000000000000003},
        {**CONFIG, "cr": {**CONFIG["cr"], "indices": [2.6, 2.85, 2.51, 3.6]}},
        {**CONFIG, "mode": "none"},
        {**CONFIG, "extra": None},
    ],
)
def test_any_configuration_value_matters(config):
    assert all(a != b for a, b in zip(_plan(config=config), _plan()))


def test_any_upstream_fingerprint_matters():
    assert all(a != b for a, b in zip(_plan(upstream=("a" * 64, "c" * 64)), _plan()))
    assert all(a != b for a, b in zip(_plan(upstream=("b" * 64, "a" * 64)), _plan()))


def test_a_row_changes_only_its_own_fingerprint():
    base = _plan()
    moved = _plan(mass=(0.1, 1.0000000000000002, 2.5))
    assert [a == b for a, b in zip(base, moved)] == [True, False, True]
    relabelled = _plan(stage=("MS", "RGB", "CHeB"))
    assert [a == b for a, b in zip(base, relabelled)] == [True, True, False]
    # a row keeps its fingerprint wherever it sits in the table (so rows can be reused)
    assert _plan(mass=(2.5, 0.1), stage=("MS", "MS")) == [base[2], base[0]]


def test_one_canonical_form():
    fp = Fingerprinter(code="x")
    # equal values give equal fingerprints whatever the dtype or string width
    assert fp.rows(m=np.array([1.5, 2.0], np.float32)) == fp.rows(m=np.array([1.5, 2.0]))
    assert fp.rows(s=np.array(["MS", "RGB"], "U10")) == fp.rows(s=np.array(["MS", "RGB"]))
    assert fp.rows(s=np.array(["MS", "RGB"], object)) == fp.rows(s=["MS", "RGB"])
    assert digest(np.array([-0.0, np.nan])) == digest(np.array([0.0, -np.nan]))
    assert digest(np.float64(2.5)) == digest(2.5) and digest(np.int64(3)) == digest(3)
    assert digest(np.arange(3, dtype=np.int32)) == digest(np.arange(3))
    # but different kinds or structures do not collide
    assert digest(3) != digest(3.0) != digest("3")
    assert digest(np.arange(3.0)) != digest(np.arange(3))
    assert digest(np.zeros((2, 3))) != digest(np.zeros((3, 2)))
    assert digest(["ab", "c"]) != digest(["a", "bc"])
    assert fp.rows(a=[1, 2]) != fp.rows(b=[1, 2])
    assert len(set(fp.rows(s=np.array([1, 1.0, True], object)))) == 3


def test_keyword_order_does_not_matter():
    assert fingerprint(a=1, b=[2.0]) == fingerprint(b=[2.0], a=1)
    f1 = Fingerprinter(x=np.arange(4.0), y={"a": 1, "b": 2})
    f2 = Fingerprinter(y={"b": 2, "a": 1}, x=np.arange(4.0))
    assert f1.rows(p=[1.0, 2.0], q=["u", "v"]) == f2.rows(q=["u", "v"], p=[1.0, 2.0])
    assert f1.chunk(0, 10) == f2.chunk(0, 10) != f1.chunk(10, 20)


def test_unsupported_objects_are_refused():
    with pytest.raises(TypeError, match="set"):
        digest({1, 2})
    with pytest.raises(ValueError, match="length"):
        Fingerprinter().rows(a=[1, 2], b=[1])


def test_combine_is_order_sensitive():
    assert combine(["a", "b"]) != combine(["b", "a"])
    assert combine(["a", "b"]) == combine(["a", "b"])
    assert combine(["ab"]) != combine(["a", "b"])


def test_chunk_keys_cover_the_dim_and_are_hashable():
    keys = chunk_keys("xsec", "E_p", 10, 4)
    assert [(k.start, k.stop) for k in keys] == [(0, 4), (4, 8), (8, 10)]
    assert len({*keys, ChunkKey("xsec", "E_p", 0, 4)}) == 3
    assert keys[0].region == {"E_p": slice(0, 4)}
    with pytest.raises(ValueError):
        chunk_keys("xsec", "E_p", 10, 0)


def test_string_columns_keep_their_fingerprints():
    # Stored ledgers hold these digests: a faster encoding of string columns must give the same
    # rows as the generic path (a str subclass takes it) and as the release that wrote them.
    class Label(str):
        pass

    fp = Fingerprinter(code="x")
    rows = fp.rows(s=["MS", "RGB", "MS"], m=[1.0, 2.0, 3.0])
    assert rows == fp.rows(s=np.array([Label("MS"), Label("RGB"), Label("MS")], object), m=[1.0, 2.0, 3.0])
    assert rows == [
        "eb33f83e541692e55deccdfb21972d19567a2d528b56d630bd4f2ff1a62e007a",
        "0747d3cda43a9cf1864d3d67a5a3f3783e743b0cf411e9fd035bc5f1aee2b97c",
        "2f42eb753077f4ed7b1f628c4d056efaca9cfe45105d0a2bae8535b9af833fea",
    ]
