"""``tasks.stages.emissivity``: the mean luminosity per star of a population and its error."""

import numpy as np

from tasks.stages.emissivity import batch_means


def _sparse_weights(rng, n_pop, n_b, n_m, share):
    """Weights as the population stage makes them: each batch's stars fall on a few templates."""
    wb = rng.random((n_pop, n_b, n_m)).astype(np.float32)
    wb[rng.random(wb.shape) > share] = 0
    return wb.astype(np.float64).mean(axis=1), wb


def test_batch_means_is_the_dense_product_over_every_template():
    # Only the templates a population's stars fall on enter the product; the reference sums
    # over every template, zeros included, and forms the batch spread by hand.
    rng = np.random.default_rng(4)
    n_pop, n_b, n_m = 5, 16, 3000
    w, wb = _sparse_weights(rng, n_pop, n_b, n_m, share=0.05)
    w[1, 7] = 0.3  # a template in the mean of no batch still counts
    L = 10 ** rng.uniform(20, 30, (n_m, 2, 2, 7))
    mean, err = batch_means(w, wb, L)
    assert mean.shape == err.shape == (n_pop, 2, 2, 7)
    ref = np.einsum("pm,mabc->pabc", w, L)
    Lb = np.einsum("pkm,mabc->pkabc", wb.astype(np.float64), L)
    ref_err = np.sqrt(((Lb - Lb.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) / (n_b - 1) / n_b)
    np.testing.assert_allclose(mean, ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(err, ref_err, rtol=1e-10, atol=0)


def test_a_population_with_no_star_has_zero_mean_and_error():
    rng = np.random.default_rng(1)
    w, wb = _sparse_weights(rng, 2, 4, 50, share=0.2)
    w[0], wb[0] = 0, 0
    mean, err = batch_means(w, wb, np.ones((50, 3)))
    assert np.all(mean[0] == 0) and np.all(err[0] == 0)
    np.testing.assert_allclose(mean[1], w[1].sum(), rtol=1e-12)
