"""The one-pass component sums of the sky maps against numpy's expressions, bit for bit (issue #17)."""

import numpy as np
from scipy.sparse import csr_matrix

from tasks.kernels.galaxy import COMPONENTS
from tasks.kernels.mapsum import add_dense, add_outer
from tasks.stages import sky as S

RNG = np.random.default_rng(17)


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(np.uint64)


def _values(*shape) -> np.ndarray:
    """Positive float64 spread over 40 decades, with full mantissas (what a map holds)."""
    return RNG.uniform(0.5, 2.0, shape) * 10.0 ** RNG.uniform(-30, 10, shape)


def test_add_outer_and_add_dense_are_numpys_sums_to_the_bit():
    n, k = 300, 37
    a, L, S_ = _values(n, 1), _values(1, k), _values(1, k)
    P, E = _values(n, k), _values(n, k)
    I, var = np.full((n, k), np.nan), np.full((n, k), np.nan)  # overwritten by the first component
    add_outer(I, var, a[:, 0], L[0], S_[0], True)
    ref_I, ref_var = np.zeros((n, k)), np.zeros((n, k))
    ref_I[:] = a @ L
    ref_var += (a @ S_) ** 2
    assert np.array_equal(_bits(I), _bits(ref_I)) and np.array_equal(_bits(var), _bits(ref_var))
    add_dense(I, var, P, E, False)
    ref_I += P
    ref_var += E**2
    assert np.array_equal(_bits(I), _bits(ref_I)) and np.array_equal(_bits(var), _bits(ref_var))
    add_outer(I, var, a[:, 0], L[0], S_[0], False)
    ref_I += a @ L
    ref_var += (a @ S_) ** 2
    assert np.array_equal(_bits(I), _bits(ref_I)) and np.array_equal(_bits(var), _bits(ref_var))
    add_dense(I, var, P, E, True)
    assert np.array_equal(_bits(I), _bits(P)) and np.array_equal(_bits(var), _bits(E**2))


def _operators(n: int, n_R: int, sparse: bool) -> dict:
    ops = {c: _values(n, 1) for c in COMPONENTS}
    thin = _values(n, n_R) * (RNG.uniform(size=(n, n_R)) < 0.3)
    ops["thin"] = csr_matrix(thin) if sparse else thin
    return ops


def _lbar(n_R: int, k: int) -> dict:
    out = {"energy": np.arange(k // 4, dtype=float)}
    for c in COMPONENTS:
        rows = n_R if c == "thin" else 1
        out[c] = (_values(rows, k), _values(rows, k))
    return out


def test_apply_operators_is_the_componentwise_numpy_sum():
    # 2,500 rays: three blocks of S.BLOCK = 1024, the last partial; the thin disk dense (R mode) and sparse (Rz)
    assert S.BLOCK == 1024
    n, n_R, k = 2500, 13, 4 * 9
    for sparse in (False, True):
        ops, lbar = _operators(n, n_R, sparse), _lbar(n_R, k)
        I, err = S.apply_operators(S.split_blocks(ops, n), n, lbar)
        # the sums of the stage before the one-pass kernels: per block, in component order
        ref_I, ref_var = np.zeros((n, k)), np.zeros((n, k))
        for s0 in range(0, n, S.BLOCK):
            sl = slice(s0, min(s0 + S.BLOCK, n))
            for ci, c in enumerate(COMPONENTS):
                L, S_ = lbar[c]
                part, e = ops[c][sl] @ L, ops[c][sl] @ S_
                if ci == 0:
                    ref_I[sl] = part
                else:
                    ref_I[sl] += part
                ref_var[sl] += e**2
        assert np.array_equal(_bits(I), _bits(ref_I)), sparse
        assert np.array_equal(_bits(err), _bits(np.sqrt(ref_var))), sparse
        # with per-component maps every component takes the dense path: the same map, the same bits
        I2, err2, I_c = S.apply_operators(S.split_blocks(ops, n), n, lbar, per_component=True)
        assert np.array_equal(_bits(I2), _bits(I)) and np.array_equal(_bits(err2), _bits(err))
        assert np.array_equal(_bits(I_c[:, 0]), _bits(ops[COMPONENTS[0]] @ lbar[COMPONENTS[0]][0]))
