"""Compiled ``knn`` estimator (paper Eq. 19): an exact K-nearest-template search on the track grid.

The templates lie on tracks, one per (initial mass, Z), and a track's templates are ordered in
age: :class:`tasks.kernels.population._NeighbourGrid` holds, per metallicity node, its tracks
ascending in log M and, per track, its valid templates ascending in log age.  A star's K
nearest templates in (log10 M, log10 Z, log10 age) are then found by walking outwards from the
star: metallicity nodes in order of |dlog Z|, on each the tracks in order of |dlog M|, on each
track the templates in order of |dlog age|, each walk stopping as soon as its lower bound of
the squared distance reaches the current (K+1)-th best.  No k-d tree, no sort of the stars.

It gives exactly what ``scipy.spatial.cKDTree.query(x, k)`` (``eps=0``) gave, bit for bit:

* the squared distance is formed as cKDTree forms it for three dimensions,
  ``(dM * dM + dZ * dZ) + dA * dA`` (its scalar ``sqeuclidean_distance_double``; checked
  against the tree in tests/tasks/kernels/test_knn.py), and the distance is its square root;
* the bounds are that same sum with the missing terms left out: rounding is monotone, so a
  bound never exceeds a distance it bounds, and the search misses no template;
* ties: cKDTree orders equal distances by its traversal, and its pruning can drop a template
  within a few ulps of the K-th distance.  The search keeps the K + 1 best and flags a star
  whose K + 1 best distances are not separated by more than a relative ``TIE`` (any two
  neighbours, and the K-th from the first one left out): its neighbours are then taken from
  the tree itself (a handful of stars per million).

The weights Delta t / distance are normalised with numpy's pairwise summation order and added
into the population's row in ``numpy.bincount``'s order (star by star, nearest first), so the
population cube of a seed is the one the numpy code wrote.  No fastmath, no parallel loops.
Imported only where stars are sampled.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from tasks.kernels.eep import _JIT

__all__ = ["TIE", "EXACT", "nearest", "accumulate", "neighbour_weights"]

#: Relative gap of squared distances below which two neighbours count as tied (see the module doc).
TIE = 1e-9
#: Distance below which a template is the star's own (it takes the star's whole weight).
EXACT = 1e-12


@nb.njit(**_JIT)
def _first_at_or_above(x, lo, hi, v):
    """``lo + searchsorted(x[lo:hi], v, side="left")``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if x[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(**_JIT)
def _insert(s, j, best_sq, best_id):
    """Insert squared distance ``s`` of template ``j`` into the ascending ``best_sq`` (dropping its last)."""
    p = best_sq.size - 1
    while p > 0 and best_sq[p - 1] > s:
        best_sq[p] = best_sq[p - 1]
        best_id[p] = best_id[p - 1]
        p -= 1
    best_sq[p] = s
    best_id[p] = j


@nb.njit(**_JIT)
def _track(x_t, lb, t_start, t_stop, tpl_la, best_sq, best_id):
    """Offer the templates of one track (squared distance in mass and Z ``lb``) to ``best_sq``."""
    p = _first_at_or_above(tpl_la, t_start, t_stop, x_t)
    for q in range(p, t_stop):
        d = x_t - tpl_la[q]
        s = lb + d * d
        if s >= best_sq[-1]:
            break
        _insert(s, q, best_sq, best_id)
    for q in range(p - 1, t_start - 1, -1):
        d = x_t - tpl_la[q]
        s = lb + d * d
        if s >= best_sq[-1]:
            break
        _insert(s, q, best_sq, best_id)


@nb.njit(**_JIT)
def _node(x_m, x_t, dz2, m_start, m_stop, track_lm, track_start, tpl_la, best_sq, best_id):
    """Offer the tracks of one metallicity node (squared Z distance ``dz2``), outwards in mass."""
    p = _first_at_or_above(track_lm, m_start, m_stop, x_m)
    for r in range(p, m_stop):
        d = x_m - track_lm[r]
        lb = d * d + dz2
        if lb >= best_sq[-1]:
            break
        _track(x_t, lb, track_start[r], track_start[r + 1], tpl_la, best_sq, best_id)
    for r in range(p - 1, m_start - 1, -1):
        d = x_m - track_lm[r]
        lb = d * d + dz2
        if lb >= best_sq[-1]:
            break
        _track(x_t, lb, track_start[r], track_start[r + 1], tpl_la, best_sq, best_id)


@nb.njit(**_JIT)
def nearest(lm, lz, la, node_lz, node_start, track_lm, track_start, tpl_la, tpl_index, idx, dist, tied):
    """The ``idx.shape[1]`` nearest valid templates of each star, nearest first.

    Parameters
    ----------
    lm, lz, la : (n,) float64
        The stars' log10 initial mass [Msun], log10 Z and log10 age [yr] (the k-d tree's query points).
    node_lz : (nz,) float64
        log10 Z of the metallicity nodes, ascending.
    node_start : (nz + 1,) int64
        Where each node's tracks start in ``track_lm``.
    track_lm : (n_tracks,) float64
        log10 initial mass of each track, ascending within its node.
    track_start : (n_tracks + 1,) int64
        Where each track's templates start in ``tpl_la``.
    tpl_la : (n_valid,) float64
        log10 age [yr] of each valid template, ascending within its track.
    tpl_index : (n_valid,) int64
        Each template's index in the library.
    idx : (n, k) int64, output
        Library indices of the neighbours.
    dist : (n, k) float64, output
        Their distances.
    tied : (n,) bool, output
        Stars whose k + 1 best distances are not separated by more than :data:`TIE` (relative).
    """
    k = idx.shape[1]
    nz = node_lz.size
    best_sq = np.empty(k + 1)
    best_id = np.empty(k + 1, np.int64)
    for i in range(lm.size):
        best_sq[:] = np.inf
        best_id[:] = -1
        x_m, x_z, x_t = lm[i], lz[i], la[i]
        up = _first_at_or_above(node_lz, 0, nz, x_z)
        down = up - 1
        # nodes in order of |dlog Z|: the nearest fill best_sq first and prune the others
        while up < nz or down >= 0:
            d_up = x_z - node_lz[up] if up < nz else np.inf
            d_down = x_z - node_lz[down] if down >= 0 else np.inf
            if up < nz and (down < 0 or d_up * d_up <= d_down * d_down):
                j = up
                dz2 = d_up * d_up
                up += 1
                if dz2 >= best_sq[-1]:
                    up = nz
                    continue
            else:
                j = down
                dz2 = d_down * d_down
                down -= 1
                if dz2 >= best_sq[-1]:
                    down = -1
                    continue
            _node(x_m, x_t, dz2, node_start[j], node_start[j + 1], track_lm, track_start, tpl_la, best_sq, best_id)
        flag = False
        for q in range(k):
            if best_sq[q + 1] < np.inf and best_sq[q + 1] - best_sq[q] <= TIE * best_sq[q + 1]:
                flag = True
            idx[i, q] = tpl_index[best_id[q]]
            dist[i, q] = np.sqrt(best_sq[q])
        tied[i] = flag


@nb.njit(**_JIT)
def _pairwise_sum(a):
    """``a.sum()`` in numpy's pairwise order (numpy's ``pairwise_sum`` for up to 128 terms)."""
    n = a.size
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - n % 8:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


@nb.njit(**_JIT)
def _weights(idx_i, dist_i, duration, w):
    """One star's Eq. 19 weights into ``w``: Delta t / distance normalised, or its exact templates alone."""
    k = w.size
    exact = False
    for q in range(k):
        if dist_i[q] <= EXACT:
            exact = True
    for q in range(k):
        if exact:
            w[q] = 1.0 if dist_i[q] <= EXACT else 0.0
        else:
            w[q] = duration[idx_i[q]] / max(dist_i[q], EXACT)
    total = _pairwise_sum(w)
    for q in range(k):
        w[q] = w[q] / total


@nb.njit(**_JIT)
def neighbour_weights(idx, dist, duration, w):
    """``w[i]``: the Eq. 19 weights of star i's neighbours ``idx[i]`` at distances ``dist[i]`` (sum one)."""
    for i in range(idx.shape[0]):
        _weights(idx[i], dist[i], duration, w[i])


@nb.njit(**_JIT)
def accumulate(idx, dist, duration, weight, out):
    """Add ``weight[i]`` times the Eq. 19 weights of star i into ``out`` (n_models,), in numpy.bincount's order.

    ``duration`` [yr]: each library template's time span; ``weight``: each star's statistical weight.
    """
    w = np.empty(idx.shape[1])
    for i in range(idx.shape[0]):
        _weights(idx[i], dist[i], duration, w)
        x = weight[i]
        for q in range(w.size):
            out[idx[i, q]] += w[q] * x
