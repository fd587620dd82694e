"""The compiled population kernels (tasks/kernels/eep.py) against the numpy code they replaced.

The oracle (population_numpy_oracle.py) is the previous numpy implementation, verbatim; the
kernels promise the same floating-point operations in the same order, so every comparison
here is exact (the population cube of a seed must not change).
"""

import numpy as np
import pytest

from tasks.config import Galaxy
from tasks.kernels import eep
from tasks.kernels.population import (
    IMF,
    TemplateLibrary,
    age_cdf,
    batch_rng,
    lookup_table,
    population_weights,
    sample_ages,
    sample_feh,
    strata_allocation,
)
from tests.tasks.kernels import population_numpy_oracle as oracle

G = Galaxy()
T_MAX = 1.4e10
STAGES = ("MS", "RGB", "CHeB", "EAGB", "TPAGB")


def _irregular_rows(seed=0):
    """(mass_init, Z, age, duration, stage, valid) of tracks with uneven masses and metallicities, stages that vary in count or are missing,
    uneven snapshot spacing and ~10% invalid templates: every branch of the eep estimator."""
    rng = np.random.default_rng(seed)
    masses = np.sort(np.concatenate([[0.1, 1.0, 25.0], 10 ** rng.uniform(-0.9, 1.35, 21)]))
    zs = [1e-4, 4e-4, 0.002, 0.0071, 0.02, 0.03]
    rows = []
    for z in zs:
        for m in masses:
            life = min(1e10 * m**-2.5, 2 * T_MAX) * (1.0 + 5 * (0.02 - z))
            ends = np.cumsum([0.85, 0.1, 0.04, 0.007, 0.003]) * life  # stage ends [yr]
            start = 0.01 * life  # the zero-age main sequence is not at age 0 (so b0 counts)
            for s, name in enumerate(STAGES):
                if s >= 2 and m < 0.5 or s == 4 and m > 8:  # no helium burning / no TP-AGB here
                    break
                n = int(rng.integers(1, 7))
                cuts = np.sort(rng.uniform(start, ends[s], n - 1))
                edges = np.concatenate([[start], cuts, [ends[s]]])
                for lo, hi in zip(edges[:-1], edges[1:]):
                    if hi > lo and lo + 0.5 * (hi - lo) < T_MAX:
                        rows.append((m, z, lo + 0.5 * (hi - lo), hi - lo, name))
                start = ends[s]
    m, z, a, d, st = (np.array(c) for c in zip(*rows))
    valid = rng.random(m.size) > 0.1
    return m.astype(float), z.astype(float), a.astype(float), d.astype(float), st, valid


def _irregular_library(seed=0):
    return TemplateLibrary(*_irregular_rows(seed))


def _stars(lib, n, seed=1):
    rng = np.random.default_rng(seed)
    M = np.maximum(10 ** rng.uniform(-1.1, np.log10(25.0), n), lib.mass_range[0])
    M[:50] = np.repeat(np.unique(10 ** lib._points[:, 0])[:10], 5)  # on the tracks' masses
    Z = np.clip(10 ** rng.uniform(-4.3, -1.3, n), *lib.z_range)
    return M, Z


def test_lookup_finds_what_searchsorted_finds():
    x = np.log10(np.array([0.1, 0.105, 0.2, 0.21, 0.5, 1.0, 1.0001, 3.0, 25.0]))
    x0, inv_h, table = lookup_table(x)
    v = np.concatenate([x, x - 1e-12, x + 1e-12, np.random.default_rng(4).uniform(-1.5, 1.8, 5000)])
    got = np.array([eep._below(x, 0, x.size, x0, inv_h, table, float(t)) for t in v])
    np.testing.assert_array_equal(got, np.searchsorted(x, v, side="right") - 1)


def test_compiled_lifetime_and_eep_weights_equal_the_numpy_oracle_bit_for_bit():
    lib = _irregular_library()
    M, Z = _stars(lib, 60_000)
    life = oracle.lifetime(lib, M, Z)
    np.testing.assert_array_equal(lib.lifetime(M, Z), life)
    age = np.random.default_rng(2).uniform(0.0, 1.0, M.size) * life
    idx0, w0 = oracle.phase_weights(lib._phases, np.log10(M), Z, age)
    idx, w = lib.phase_weights(M, Z, age)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(idx[w0 > 0], idx0[w0 > 0])
    # accumulated in place: the same sums as numpy.bincount of the oracle's weights
    weight = np.random.default_rng(3).random(M.size)
    alive = np.random.default_rng(4).random(M.size) < 0.8
    out = np.zeros(lib.size)
    lib.add_phase_weights(np.log10(M), np.log10(Z), age, weight, alive, out)
    ref = np.bincount(idx0[alive].ravel(), weights=(w0[alive] * weight[alive, None]).ravel(), minlength=lib.size)
    np.testing.assert_array_equal(out, ref)
    # the alive test is the oracle's lifetime test
    p_young = np.where(np.arange(M.size) % 7 == 0, 0.0, 0.5)
    age2 = age * np.random.default_rng(5).uniform(0.5, 1.5, M.size)
    np.testing.assert_array_equal(
        lib.alive(np.log10(M), np.log10(Z), age2, p_young), (p_young > 0) & (age2 < life)
    )


def test_population_weights_equal_the_numpy_batch_loop_bit_for_bit():
    """One seed gives the same cube as before the compiled kernels: the numpy loop, written out."""
    lib = _irregular_library(seed=7)
    offsets = [0.0, -0.3]
    n, n_b = 3000, 2
    got = population_weights(lib, "thin", offsets, G, seed=11, n_batches=n_b, stars_per_batch=n, t_max=T_MAX)
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
        for j, off in enumerate(offsets):
            Z = np.clip(G.z_sun * 10.0 ** sample_feh("thin", G, u_feh, age, off), *lib.z_range)
            alive = (p_young > 0) & (age < oracle.lifetime(lib, Mq, Z))
            idx, w = oracle.phase_weights(lib._phases, np.log10(Mq[alive]), Z[alive], age[alive])
            ref = np.bincount(idx.ravel(), weights=(w * (scale * p_young)[alive, None]).ravel(), minlength=lib.size)
            np.testing.assert_array_equal(got[j].weight_batch[0, b], ref)


@pytest.mark.parametrize("n_z", [1, 2])
def test_one_or_two_metallicities_and_a_single_track_node(n_z):
    """The branches without a metallicity bracket (one node) and with a one-track node."""
    rows = _irregular_rows(seed=3)
    m, z = rows[0], rows[1]
    keep = np.isin(z, [0.002, 0.02][:n_z])
    if n_z == 2:  # the Z = 0.002 node keeps a single track
        keep &= (z > 0.003) | (m == 1.0)
    sub = TemplateLibrary(*(c[keep] for c in rows))
    M, Z = _stars(sub, 20_000)
    life = oracle.lifetime(sub, M, Z)
    np.testing.assert_array_equal(sub.lifetime(M, Z), life)
    age = np.random.default_rng(9).uniform(0.0, 1.0, M.size) * life
    _, w0 = oracle.phase_weights(sub._phases, np.log10(M), Z, age)
    np.testing.assert_array_equal(sub.phase_weights(M, Z, age)[1], w0)


@pytest.mark.parametrize("slopes", [(1.3, 2.3), (1.0, 2.35), (0.3, 1.0)])
def test_imf_ppf_equals_the_per_star_formula_bit_for_bit(slopes):
    """The mass sampler computes per segment what depends on the segment only: same numbers."""
    imf = IMF((0.08, 0.5, 100.0), slopes)
    u = np.concatenate([np.random.default_rng(8).random(200_000), [0.0, 1.0, imf.cdf(0.5)]])
    np.testing.assert_array_equal(imf.ppf(u), oracle.ppf(imf, u))


def test_the_grid_rows_have_the_kernel_s_layout():
    """_PhaseGrid (numba-free, built when planning) writes the rows the kernel reads."""
    lib = _irregular_library()
    *_, trk, tpl = lib._phases.kernel_args
    assert trk.shape[1] == eep.TRACK_COLUMNS and tpl.shape[1] == eep.TEMPLATE_COLUMNS
    g = lib._phases
    np.testing.assert_array_equal(tpl[:, eep._KEY], g.key)
    np.testing.assert_array_equal(tpl[:, eep._INDEX], g.index)
    np.testing.assert_array_equal(trk[:, eep._B0], g.b0)
    np.testing.assert_array_equal(trk[:, eep._LOG_B : eep._LOG_B + eep.N_STAGES], g.log_b)
    assert eep.SPAN == g._SPAN
