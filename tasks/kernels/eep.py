"""Compiled per-star kernels of the population Monte Carlo: lifetime test and ``eep`` weights.

The ``eep`` estimator (docs/physics.md P6, "Population estimators"; :class:`_PhaseGrid` in
:mod:`tasks.kernels.population` holds the grid) needs, for every living star, its four
bracketing tracks in (log M, log Z), its own stage boundaries, its phase, and on each track
the two templates of its stage around that phase.  In numpy that is ~40 passes over
(n, 4)-(n, 8) temporaries and one binary search per star and track over the whole library;
here it is one loop over the stars with the result added straight into the population's
weight row:

* tracks and metallicity nodes are found by index arithmetic: a uniform lookup table over
  the (log) grid gives the node at or below the bin's start, and a step or two along the
  grid corrects it (the bins are narrower than the grid spacing);
* a template is found from its stage's first position on the track plus the star's phase
  fraction times the stage's template count, then walked to the exact lower bound (the
  snapshots are spread evenly in phase, so the guess is off by at most a step or two);
* what a star reads of a track (stage positions, boundaries) and of a template (key, phase,
  stage, track, index) lies in one row each: the stars come in random order, so the kernel
  is bound by cache misses into the 87,485-template paper library, and one row is one or
  two cache lines where separate arrays cost one each (measured on the paper library with
  log-uniform masses in random order: 1402 -> 633 ns per star).

Every floating-point operation is the one, in the same order, of the numpy implementation
it replaced (``tests/tasks/kernels/population_numpy_oracle.py``), so the weights and the
population cube are the same to the last bit; the weights of a star are added into the row
in the order ``numpy.bincount`` added them.  No fastmath, no parallel loops: the result does
not depend on the machine's thread count.  Imported only where stars are sampled (numba
costs seconds to import and compile; planning and ``status`` never need it).
"""

from __future__ import annotations


import numba as nb
import numpy as np

from catalogs.jit import jit_options

__all__ = ["log_lifetime", "alive_mask", "phase_accumulate", "phase_weights"]

_JIT = jit_options(__file__)

#: Phase span of one track in the sorted template keys (must match ``_PhaseGrid._SPAN``).
SPAN = 8.0
#: Stages of a track (MS, RGB, CHeB, EAGB, TPAGB).
N_STAGES = 5

# Columns of the per-track rows ``trk``: positions in ``tpl`` where each stage starts (0-5) and
# where the track ends (6), the start of the main sequence b0 [yr], log10 of the stage ends.
_B0 = N_STAGES + 2
_LOG_B = N_STAGES + 3
#: Columns of the per-track rows (padded to two cache lines).
TRACK_COLUMNS = 16
# Columns of the per-template rows ``tpl`` (valid templates sorted by track, then phase):
# sort key track * SPAN + phase, phase, stage, track, index in the library.
_KEY, _PHASE, _STAGE, _TRACK, _INDEX = range(5)
#: Columns of the per-template rows.
TEMPLATE_COLUMNS = 5


@nb.njit(**_JIT)
def _below(x, lo, hi, x0, inv_h, table, v):
    """``searchsorted(x[lo:hi], v, side="right") - 1``, by table look-up and a short walk.

    ``x0``, ``inv_h``, ``table``: the lookup table of ``x[lo:hi]`` (``tasks.kernels.population.lookup_table``).
    """
    m = hi - lo
    b = int((v - x0) * inv_h) if v > x0 else 0
    if b > table.size - 1:
        b = table.size - 1
    k = table[b]
    while k + 1 < m and x[lo + k + 1] <= v:
        k += 1
    while k >= 0 and x[lo + k] > v:
        k -= 1
    return k


@nb.njit(**_JIT)
def _interp(x, y, lo, hi, k, v):
    """``numpy.interp(v, x[lo:hi], y[lo:hi])`` given ``k``, the node at or below ``v`` (same arithmetic)."""
    m = hi - lo
    if k < 0:
        return y[lo]
    if k >= m - 1:
        return y[hi - 1]
    if x[lo + k] == v:
        return y[lo + k]
    slope = (y[lo + k + 1] - y[lo + k]) / (x[lo + k + 1] - x[lo + k])
    out = slope * (v - x[lo + k]) + y[lo + k]
    if np.isnan(out):
        out = slope * (v - x[lo + k + 1]) + y[lo + k + 1]
        if np.isnan(out) and y[lo + k] == y[lo + k + 1]:
            out = y[lo + k]
    return out


@nb.njit(**_JIT)
def _z_node(lz, lz_x0, lz_inv_h, lz_table, logz):
    """Metallicity node j below ``logz`` (clipped to the second-last) and the fraction towards j + 1."""
    nz = lz.size
    if nz == 1:
        return 0, 0.0
    j = _below(lz, 0, nz, lz_x0, lz_inv_h, lz_table, logz)
    j = min(max(j, 0), nz - 2)
    return j, (logz - lz[j]) / (lz[j + 1] - lz[j])


@nb.njit(**_JIT)
def _log_life(v, logz, lz, lz_x0, lz_inv_h, lz_table, tk_start, tk_lm, tk_lt, tk_x0, tk_inv_h, tab_start, tables):
    """log10 lifetime [yr] at log mass ``v`` and log metallicity ``logz``, as ``TemplateLibrary.lifetime``."""
    if lz.size == 1:
        k = _below(tk_lm, tk_start[0], tk_start[1], tk_x0[0], tk_inv_h[0], tables[tab_start[0]:tab_start[1]], v)
        return _interp(tk_lm, tk_lt, tk_start[0], tk_start[1], k, v)
    j, f = _z_node(lz, lz_x0, lz_inv_h, lz_table, logz)
    k0 = _below(tk_lm, tk_start[j], tk_start[j + 1], tk_x0[j], tk_inv_h[j], tables[tab_start[j]:tab_start[j + 1]], v)
    k1 = _below(tk_lm, tk_start[j + 1], tk_start[j + 2], tk_x0[j + 1], tk_inv_h[j + 1],
                tables[tab_start[j + 1]:tab_start[j + 2]], v)
    lo = _interp(tk_lm, tk_lt, tk_start[j], tk_start[j + 1], k0, v)
    hi = _interp(tk_lm, tk_lt, tk_start[j + 1], tk_start[j + 2], k1, v)
    return (1.0 - f) * lo + f * hi


@nb.njit(**_JIT)
def log_lifetime(lm, logz, lz, lz_x0, lz_inv_h, lz_table, tk_start, tk_lm, tk_lt, tk_x0, tk_inv_h, tab_start, tables,
                 out):
    """``out[i]`` = log10 lifetime [yr] of star i (log10 mass ``lm`` [Msun], log10 metallicity ``logz``).

    ``lz`` and its lookup table: the library's log metallicity nodes; ``tk_start`` (nz + 1,):
    where each node's tracks start in ``tk_lm`` (log10 M) and ``tk_lt`` (log10 lifetime [yr]);
    ``tk_x0``, ``tk_inv_h``, ``tab_start``, ``tables``: each node's lookup table (``tasks.kernels.population.lookup_table``).
    """
    for i in range(lm.size):
        out[i] = _log_life(lm[i], logz[i], lz, lz_x0, lz_inv_h, lz_table, tk_start, tk_lm, tk_lt, tk_x0, tk_inv_h,
                           tab_start, tables)


@nb.njit(**_JIT)
def alive_mask(lm, logz, age, p_young, lz, lz_x0, lz_inv_h, lz_table, tk_start, tk_lm, tk_lt, tk_x0, tk_inv_h,
               tab_start, tables, out):
    """``out[i]`` = star i may carry a yield: ``p_young[i] > 0`` and ``age[i]`` [yr] below its lifetime.

    Arguments as :func:`log_lifetime`, plus ``age`` and ``p_young`` (probability of the star's age bound).
    """
    for i in range(lm.size):
        life = _log_life(lm[i], logz[i], lz, lz_x0, lz_inv_h, lz_table, tk_start, tk_lm, tk_lt, tk_x0, tk_inv_h,
                         tab_start, tables)
        out[i] = (p_young[i] > 0) and (age[i] < 10.0 ** life)


@nb.njit(**_JIT)
def _bracket(node_start, node_lm, node_track, node_x0, node_inv_h, tab_start, tables, j, v):
    """Lower and upper track of metallicity node ``j`` around log mass ``v`` and the weight of the upper."""
    lo, hi = node_start[j], node_start[j + 1]
    if hi - lo == 1:
        return node_track[lo], node_track[lo], 0.0
    k = _below(node_lm, lo, hi, node_x0[j], node_inv_h[j], tables[tab_start[j]:tab_start[j + 1]], v)
    k = min(max(k, 0), hi - lo - 2)
    g = (v - node_lm[lo + k]) / (node_lm[lo + k + 1] - node_lm[lo + k])
    return node_track[lo + k], node_track[lo + k + 1], min(max(g, 0.0), 1.0)


@nb.njit(**_JIT)
def _lower_bound(tpl, first, last, guess, q):
    """First position p in [first, last] with key ``tpl[p, 0] >= q`` (keys ascending), walking from ``guess``."""
    p = min(max(guess, first), last)
    while p > first and tpl[p - 1, _KEY] >= q:
        p -= 1
    while p < last and tpl[p, _KEY] < q:
        p += 1
    return p


@nb.njit(**_JIT)
def _star(i, lm, logz, age, lz, lz_x0, lz_inv_h, lz_table, node_start, node_lm, node_track, node_x0, node_inv_h,
          tab_start, tables, trk, tpl, tr, wt, left, right, wl, wr):
    """The eep weights of star ``i``: positions ``left``, ``right`` in ``tpl`` (4 each), weights ``wl``, ``wr``."""
    nz = lz.size
    v = lm[i]
    if nz == 1:
        j, f = 0, 0.0
    else:
        j, f = _z_node(lz, lz_x0, lz_inv_h, lz_table, logz[i])
        f = min(max(f, 0.0), 1.0)
    tr[0], tr[1], g0 = _bracket(node_start, node_lm, node_track, node_x0, node_inv_h, tab_start, tables, j, v)
    tr[2], tr[3], g1 = _bracket(node_start, node_lm, node_track, node_x0, node_inv_h, tab_start, tables,
                                min(j + 1, nz - 1), v)
    wt[0] = (1 - f) * (1 - g0)
    wt[1] = (1 - f) * g0
    wt[2] = f * (1 - g1)
    wt[3] = f * g1
    # The star's own stage boundaries (each a sum of four products in numpy.einsum's order) and
    # its stage s, the number of the first four it has passed.  Boundaries never decrease
    # (rounding is monotone), so the count stops at the first one ahead: most stars are on the
    # main sequence and need one power of ten, not five.
    a = age[i]
    s = 0
    while True:
        c = _LOG_B + s
        end = 10.0 ** (((wt[0] * trk[tr[0], c] + wt[1] * trk[tr[1], c]) + wt[2] * trk[tr[2], c]) + wt[3] * trk[tr[3], c])
        if s == N_STAGES - 1 or a < end:
            break
        start = end
        s += 1
    if s == 0:
        start = (wt[0] * trk[tr[0], _B0] + wt[2] * trk[tr[2], _B0]) + (wt[1] * trk[tr[1], _B0] + wt[3] * trk[tr[3], _B0])
    frac = min(max((a - start) / ((end - start) if end > start else 1.0), 0.0), 1.0)
    phase = s + frac
    last = tpl.shape[0] - 1
    total = 0.0
    for k in range(4):
        t = tr[k]
        q = t * SPAN + phase
        s_lo, s_hi = int(trk[t, s]), int(trk[t, s + 1])
        r = _lower_bound(tpl, int(trk[t, 0]), int(trk[t, N_STAGES + 1]), s_lo + int(frac * (s_hi - s_lo)), q)
        lft = max(r - 1, 0)
        r = min(r, last)
        left[k], right[k] = lft, r
        qp = q - t * SPAN
        in_r = tpl[r, _TRACK] == t and tpl[r, _STAGE] == s and tpl[r, _PHASE] >= qp
        in_l = tpl[lft, _TRACK] == t and tpl[lft, _STAGE] == s and tpl[lft, _PHASE] <= qp
        span = tpl[r, _PHASE] - tpl[lft, _PHASE]
        if in_l and in_r:
            w_r = (phase - tpl[lft, _PHASE]) / span if span > 0 else 0.0
        else:
            w_r = 1.0 if in_r else 0.0
        wr[k] = w_r
        wl[k] = 1.0 - w_r if in_l else 0.0
        if not (in_l or in_r):
            wt[k] = 0.0  # this track has no valid template of the star's stage
        total = total + wt[k] if k else wt[k]
    if total <= 0:
        # no bracketing track has that stage: the nearest valid template in phase on each track
        wt[0] = (1 - f) * (1 - g0)
        wt[1] = (1 - f) * g0
        wt[2] = f * (1 - g1)
        wt[3] = f * g1
        for k in range(4):
            t, lft, r = tr[k], left[k], right[k]
            near_r = tpl[r, _TRACK] == t and (
                tpl[lft, _TRACK] != t or abs(tpl[r, _PHASE] - phase) < abs(tpl[lft, _PHASE] - phase)
            )
            wl[k] = 0.0 if near_r else 1.0
            wr[k] = 1.0 if near_r else 0.0
        total = ((wt[0] + wt[1]) + wt[2]) + wt[3]
    for k in range(4):
        wt[k] = wt[k] / total


@nb.njit(**_JIT)
def phase_accumulate(lm, logz, age, weight, alive, lz, lz_x0, lz_inv_h, lz_table, node_start, node_lm, node_track,
                     node_x0, node_inv_h, tab_start, tables, trk, tpl, out):
    """Add ``weight[i]`` times the eep weights of each star with ``alive[i]`` into ``out`` (n_models,).

    In numpy.bincount's order: star by star, each star's four left templates, then its four right ones.
    """
    tr = np.empty(4, np.int64)
    wt = np.empty(4)
    left = np.empty(4, np.int64)
    right = np.empty(4, np.int64)
    wl = np.empty(4)
    wr = np.empty(4)
    for i in range(lm.size):
        if not alive[i]:
            continue
        _star(i, lm, logz, age, lz, lz_x0, lz_inv_h, lz_table, node_start, node_lm, node_track, node_x0, node_inv_h,
              tab_start, tables, trk, tpl, tr, wt, left, right, wl, wr)
        x = weight[i]
        for k in range(4):
            out[int(tpl[left[k], _INDEX])] += (wt[k] * wl[k]) * x
        for k in range(4):
            out[int(tpl[right[k], _INDEX])] += (wt[k] * wr[k]) * x


@nb.njit(**_JIT)
def phase_weights(lm, logz, age, lz, lz_x0, lz_inv_h, lz_table, node_start, node_lm, node_track,
                  node_x0, node_inv_h, tab_start, tables, trk, tpl, idx, w):
    """Star i's eep templates and weights into ``idx[i]``, ``w[i]`` (n, 8): four left, then four right."""
    tr = np.empty(4, np.int64)
    wt = np.empty(4)
    left = np.empty(4, np.int64)
    right = np.empty(4, np.int64)
    wl = np.empty(4)
    wr = np.empty(4)
    for i in range(lm.size):
        _star(i, lm, logz, age, lz, lz_x0, lz_inv_h, lz_table, node_start, node_lm, node_track, node_x0, node_inv_h,
              tab_start, tables, trk, tpl, tr, wt, left, right, wl, wr)
        for k in range(4):
            idx[i, k] = int(tpl[left[k], _INDEX])
            idx[i, 4 + k] = int(tpl[right[k], _INDEX])
            w[i, k] = wt[k] * wl[k]
            w[i, 4 + k] = wt[k] * wr[k]
