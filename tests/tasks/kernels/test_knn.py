"""The ``knn`` grid search (tasks/kernels/knn.py) against the k-d tree query it replaced.

The population cube of a seed must not change: the search must pick the tree's neighbours, in
the tree's order, at the tree's distances, to the last bit, and the weights must be the numpy
code's (population_numpy_oracle.neighbours, the previous implementation verbatim).
"""

import numpy as np
import pytest
from scipy.spatial import cKDTree

import cube
from tasks.config import Galaxy
from tasks.kernels import knn
from tasks.kernels.population import (
    IMF,
    TemplateLibrary,
    age_cdf,
    batch_rng,
    population_weights,
    sample_ages,
    sample_feh,
    strata_allocation,
)
from tests.tasks.kernels import population_numpy_oracle as oracle
from tests.tasks.kernels.test_eep import _irregular_rows

G = Galaxy()
T_MAX = 1.4e10


def _library_of(store) -> TemplateLibrary:
    t = cube.open(store, "templates")
    cols = {k: t[k].values for k in ("mass_init", "metallicity", "age", "duration", "stage", "valid")}
    return TemplateLibrary(
        *(cols[k].astype(float) for k in ("mass_init", "metallicity", "age", "duration")),
        stage=cols["stage"].astype(str),
        valid=cols["valid"].astype(bool),
    )


def _stars(lib: TemplateLibrary, n: int, seed: int):
    """Stars over and beyond the library: off-grid, on track masses, on templates, younger than any template."""
    rng = np.random.default_rng(seed)
    lo, hi = np.log10(lib.mass_range)
    M = 10 ** rng.uniform(lo - 0.05, hi, n)
    Z = np.clip(10 ** rng.uniform(np.log10(lib.z_range[0]) - 0.3, np.log10(lib.z_range[1]) + 0.3, n), *lib.z_range)
    age = rng.uniform(0.0, 1.2, n) * lib.lifetime(M, Z)
    on = rng.choice(lib.size, n // 10)  # exactly on a template (valid or not): the zero-distance branch
    M[: on.size], Z[: on.size], age[: on.size] = 10 ** lib._points[on, 0], 10 ** lib._points[on, 1], 10 ** lib._points[on, 2]
    young = slice(on.size, 2 * on.size)  # below the youngest template: the tree sees age_min
    age[young] = lib.age_min * rng.uniform(0.0, 1.0, on.size)
    M = np.maximum(M, lib.mass_range[0])
    return M, Z, age


def _grid_and_tree(lib, M, Z, age, k):
    """The grid search's raw answer and the k-d tree's, on the tree's query points."""
    pts = np.column_stack([np.log10(M), np.log10(Z), np.log10(np.maximum(age, lib.age_min))])
    idx = np.empty((M.size, k), np.int64)
    dist = np.empty((M.size, k))
    tied = np.empty(M.size, bool)
    knn.nearest(*pts.T.copy(), *lib.neighbour_grid, idx, dist, tied)
    tree = cKDTree(lib._points[lib._valid_index], balanced_tree=False, leafsize=32)
    d, i = tree.query(pts, k=k)
    return idx, dist, tied, lib._valid_index[i.reshape(M.size, k)], d.reshape(M.size, k)


@pytest.mark.parametrize("k", [1, 3, 10, 17])
def test_grid_search_picks_the_k_d_trees_neighbours_on_a_real_library(tiny_store, k):
    lib = _library_of(tiny_store)
    M, Z, age = _stars(lib, 40_000, seed=k)
    idx, dist, tied, idx_tree, d_tree = _grid_and_tree(lib, M, Z, age, k)
    # every star: the tree's neighbours, nearest first, at the tree's distances (to the bit);
    # the flagged ones (ties) are then taken from the tree itself
    free = ~tied
    np.testing.assert_array_equal(idx[free], idx_tree[free])
    np.testing.assert_array_equal(dist[free], d_tree[free])
    assert tied.mean() < 0.01
    assert np.isin(idx, lib._valid_index).all()
    assert (dist[:, 0] == 0.0).sum() >= 0.9 * (M.size // 10) * lib.valid.mean()  # stars on a template find it
    # the weights: those of the numpy code, bit for bit
    idx_o, w_o = oracle.neighbours(lib, M, Z, age, k)
    idx_n, w_n = lib.neighbours(M, Z, age, k)
    np.testing.assert_array_equal(idx_n, idx_o)
    np.testing.assert_array_equal(w_n, w_o)
    np.testing.assert_allclose(w_n.sum(axis=1), 1.0, rtol=1e-14)


def test_tied_neighbours_are_flagged_and_taken_from_the_tree():
    """Duplicated templates: equal distances, whose order is the tree's traversal order."""
    m, z, a, d, st, valid = _irregular_rows(seed=5)
    dup = np.arange(0, m.size, 9)
    rows = [np.concatenate([c, c[dup]]) for c in (m, z, a, d, st)]
    lib = TemplateLibrary(*rows[:4], stage=rows[4], valid=np.concatenate([valid, np.ones(dup.size, bool)]))
    M, Z, age = _stars(lib, 20_000, seed=3)
    idx, dist, tied, idx_tree, d_tree = _grid_and_tree(lib, M, Z, age, 10)
    assert tied.sum() > 100  # the duplicates tie
    np.testing.assert_array_equal(idx[~tied], idx_tree[~tied])
    np.testing.assert_array_equal(dist[~tied], d_tree[~tied])
    idx_o, w_o = oracle.neighbours(lib, M, Z, age, 10)
    idx_n, w_n = lib.neighbours(M, Z, age, 10)
    np.testing.assert_array_equal(idx_n, idx_o)
    np.testing.assert_array_equal(w_n, w_o)


def test_k_beyond_the_library_takes_every_valid_template():
    lib = TemplateLibrary(
        np.array([1.0, 1.0, 2.0, 2.0]), np.full(4, 0.02), np.array([1e9, 1e10, 1e9, 2e9]), np.full(4, 1e8),
        valid=np.array([True, True, True, False]),
    )
    star = (np.array([1.5]), np.array([0.02]), np.array([3e9]))
    idx_n, w_n = lib.neighbours(*star, 10)
    idx_o, w_o = oracle.neighbours(lib, *star, 10)
    assert sorted(idx_n[0]) == [0, 1, 2]
    np.testing.assert_array_equal(idx_n, idx_o)
    np.testing.assert_array_equal(w_n, w_o)


def test_accumulated_weights_are_numpy_bincount_of_the_oracle_weights():
    lib = TemplateLibrary(*_irregular_rows(seed=2))
    M, Z, age = _stars(lib, 30_000, seed=8)
    weight = np.random.default_rng(1).random(M.size)
    out = np.zeros(lib.size)
    lib.add_neighbour_weights(M, Z, age, weight, 10, out)
    idx, w = oracle.neighbours(lib, M, Z, age, 10)
    ref = np.bincount(idx.ravel(), weights=(w * weight[:, None]).ravel(), minlength=lib.size)
    np.testing.assert_array_equal(out, ref)
    assert (~lib.valid).any() and out[~lib.valid].sum() == 0.0 and out.sum() == pytest.approx(weight.sum())


def test_population_knn_weights_equal_the_k_d_tree_batch_loop_bit_for_bit():
    """One seed gives the knn cube the k-d tree gave: the previous batch loop, written out."""
    lib = TemplateLibrary(*_irregular_rows(seed=7))
    offsets = [0.0, -0.3]
    n, n_b = 3000, 2
    got = population_weights(
        lib, "thin", offsets, G, seed=11, n_batches=n_b, stars_per_batch=n, t_max=T_MAX, estimators=("eep", "knn")
    )
    imf = IMF(tuple(G.imf.breaks), tuple(G.imf.slopes))
    lo, hi, prob, count = strata_allocation(imf, G.imf.strata, G.imf.max_template_mass, n, G.imf.strata_share)
    scale = np.repeat(prob / count, count)
    c_lo, c_hi = imf.cdf(np.repeat(lo, count)), imf.cdf(np.repeat(hi, count))
    for b in range(n_b):
        rng = batch_rng(11, "thin", b)
        u_mass, u_age, u_feh = rng.random(n), rng.random(n), rng.random(n)
        Mq = np.maximum(imf.ppf(c_lo + u_mass * (c_hi - c_lo)), lib.mass_range[0])
        p_young = age_cdf("thin", G, lib.lifetime_bound(Mq), T_MAX)
        age = sample_ages("thin", G, u_age * p_young, T_MAX)
        weight = scale * p_young
        for j, off in enumerate(offsets):
            Z = np.clip(G.z_sun * 10.0 ** sample_feh("thin", G, u_feh, age, off), *lib.z_range)
            alive = (p_young > 0) & (age < oracle.lifetime(lib, Mq, Z))
            idx, w = oracle.neighbours(lib, Mq[alive], Z[alive], age[alive], G.neighbours)
            ref = np.bincount(idx.ravel(), weights=(w * weight[alive, None]).ravel(), minlength=lib.size)
            assert ref.sum() > 0
            np.testing.assert_array_equal(got[j].weight_batch[1, b], ref)
