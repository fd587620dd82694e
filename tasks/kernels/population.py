"""Monte Carlo stellar populations and their template weights (docs/physics.md P6; paper Eq. 19).

A *population* is one distribution of (mass, age, metallicity): a Galactic component
(bulge, bulge_young, thin, thick) and, for the thin disk, its [Fe/H] offset
``feh_R_slope (R - R_sun) + feh_z_slope |z|`` at a position.  Sampling each population
once gives the same expectation as the paper's per-cell sampling at every (R, z) that
shares it.

For each sampled star: a mass from the broken power-law IMF (stratified in mass, see
below), an age and [Fe/H] from its component, Z = Z_sun 10^[Fe/H] clipped to the library.
Ages are drawn below an upper bound of the star's lifetime and the star carries the
probability of that bound (importance sampling that wastes no star on a certain remnant).
A star is *yield-bearing* if it is at most ``max_template_mass`` and younger than its
lifetime t_life(M, Z), interpolated from the template tracks; remnants and heavier stars
count in N with zero yield.  A yield-bearing star spreads a unit weight over templates by
one of two estimators (docs/physics.md, "Population estimators"):

* ``eep`` (default): interpolation at an equivalent evolutionary phase (Dotter 2016, the
  method of MIST): phase = stage + elapsed fraction of the stage; the star's phase follows
  from its age on its bracketing tracks in (log M, log Z), and it takes the templates of
  its own stage around that phase on each of them.
* ``knn``: the paper's Eq. 19, the K nearest templates in (log10 M, log10 Z, log10 age)
  with weights Delta t / distance.  It lets a main-sequence star next to a slightly
  heavier track that is already a giant borrow giant templates, a bias that grows as the
  library gets coarser.

The population's *template weights* are the expectation, per sampled star, of those weights:
then the mean luminosity per star is ``L_bar(E) = weights @ L(model, E)`` (paper Eq. 19)
for any yields, with no per-star loop over energies.

Stratified sampling [choice]: the IMF is cut into mass strata; a batch puts ``share`` of its
stars equally into the strata below ``max_template_mass`` and the rest in proportion to the
IMF probability (none above, whose yield is zero).  The estimator of a batch is
sum_s P_s mean_{i in s}(X_i), unbiased for any allocation; batches are independent and
identically distributed, so their spread gives the Monte Carlo standard error.

Random streams: ``SeedSequence(seed, spawn_key=(component, batch))``.  The thin-disk
populations share their streams (common random numbers): they differ only through the
metallicity offset, so the thin-disk emissivity varies smoothly with R.
Pure numpy/scipy: no I/O, no dask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from catalogs.stellar.tracks import STAGES

__all__ = [
    "ESTIMATORS",
    "COMPONENT_IDS",
    "IMF",
    "TemplateLibrary",
    "LibraryError",
    "strata_allocation",
    "sample_ages",
    "age_cdf",
    "sample_feh",
    "batch_rng",
    "lookup_table",
    "PopulationResult",
    "population_weights",
]

#: Per-star template estimators: equivalent evolutionary phase (default) and the paper's k-NN.
ESTIMATORS = ("eep", "knn")

#: Stream key of each component (part of the random stream, so never renumber).
COMPONENT_IDS = {"bulge": 0, "bulge_young": 1, "thin": 2, "thick": 3}

GYR = 1e9


class LibraryError(ValueError):
    """The template library cannot serve the population (empty, or a mass range missing)."""


@dataclass(frozen=True)
class IMF:
    """Broken power-law IMF dN/dM ~ M^-slope_i between ``breaks`` [Msun], continuous at the joints."""

    breaks: tuple[float, ...]
    slopes: tuple[float, ...]

    def __post_init__(self) -> None:
        b = np.asarray(self.breaks, float)
        if len(self.slopes) != len(b) - 1 or np.any(np.diff(b) <= 0) or b[0] <= 0:
            raise ValueError(f"IMF breaks must ascend from > 0 with one slope per segment, got {self.breaks}, {self.slopes}")

    def _segments(self):
        b = np.asarray(self.breaks, float)
        a = np.asarray(self.slopes, float)
        k = np.ones(len(a))
        for i in range(1, len(a)):
            k[i] = k[i - 1] * b[i] ** (a[i] - a[i - 1])  # continuity at b[i]
        mass = np.array([_pl_integral(k[i], a[i], b[i], b[i + 1]) for i in range(len(a))])
        return b, a, k, mass

    def pdf(self, M: ArrayLike) -> np.ndarray:
        """Normalised dN/dM [Msun^-1]; zero outside the breaks."""
        b, a, k, mass = self._segments()
        M = np.asarray(M, float)
        i = np.clip(np.searchsorted(b, M, side="right") - 1, 0, len(a) - 1)
        out = k[i] * M ** (-a[i]) / mass.sum()
        return np.where((M >= b[0]) & (M <= b[-1]), out, 0.0)

    def cdf(self, M: ArrayLike) -> np.ndarray:
        """Fraction of stars below ``M``."""
        b, a, k, mass = self._segments()
        M = np.clip(np.asarray(M, float), b[0], b[-1])
        i = np.clip(np.searchsorted(b, M, side="right") - 1, 0, len(a) - 1)
        before = np.concatenate([[0.0], np.cumsum(mass)])[i]
        return (before + _pl_integral(k[i], a[i], b[i], M)) / mass.sum()

    def ppf(self, u: ArrayLike) -> np.ndarray:
        """Inverse of :meth:`cdf` (mass [Msun] below which a fraction ``u`` of stars lies)."""
        b, a, k, mass = self._segments()
        target = np.asarray(u, float) * mass.sum()
        edges = np.concatenate([[0.0], np.cumsum(mass)])
        i = np.clip(np.searchsorted(edges, target, side="right") - 1, 0, len(a) - 1)
        rest = target - edges[i]
        # What depends on the segment only is computed per segment and gathered: the same
        # numbers as per star (elementwise power and division), at a third of the cost.
        one = np.isclose(a, 1.0)
        pw = np.where(one, 1.0, 1.0 - a)
        with np.errstate(divide="ignore", invalid="ignore"):
            m = (np.power(b[:-1], pw)[i] + rest * pw[i] / k[i]) ** (1.0 / pw)[i]
            if one.any():
                m = np.where(one[i], b[i] * np.exp(rest / k[i]), m)
        return np.clip(m, b[0], b[-1])

    def probability(self, lo: float, hi: float) -> float:
        """Fraction of stars with lo <= M < hi."""
        return float(self.cdf(hi) - self.cdf(lo))

    def mean_mass(self) -> float:
        """Mean stellar mass [Msun] of the IMF."""
        b, a, k, mass = self._segments()
        m1 = sum(_pl_integral(k[i], a[i] - 1.0, b[i], b[i + 1]) for i in range(len(a)))
        return float(m1 / mass.sum())


def _pl_integral(k, a, lo, hi):
    """Integral of k M^-a from lo to hi (vectorised in all arguments)."""
    k, a, lo, hi = (np.asarray(x, float) for x in (k, a, lo, hi))
    one = np.isclose(a, 1.0)
    p = np.where(one, 1.0, 1.0 - a)
    return np.where(one, k * np.log(hi / lo), k * (hi**p - lo**p) / p)


def strata_allocation(imf: IMF, edges: ArrayLike, m_max_yield: float, n: int, share: float):
    """Mass strata and the number of stars per batch in each.

    Parameters
    ----------
    imf : IMF
    edges : array_like
        Interior stratum edges [Msun]; the IMF ends and ``m_max_yield`` are added.
    m_max_yield : float
        Heavier stars have zero yield: strata above get no stars (their probability still
        counts in N).
    n : int
        Stars per batch.
    share : float
        Fraction of ``n`` spread equally over the yield-bearing strata; the rest follows
        the IMF.

    Returns
    -------
    lo, hi, prob, count : numpy.ndarray
        Stratum bounds [Msun], IMF probability and stars per batch (summing to ``n``).
    """
    lo_imf, hi_imf = imf.breaks[0], imf.breaks[-1]
    cut = min(m_max_yield, hi_imf)
    inner = [e for e in np.asarray(edges, float) if lo_imf < e < cut]
    bounds = np.unique(np.array([lo_imf, *inner, cut], float))
    lo, hi = bounds[:-1], bounds[1:]
    prob = np.array([imf.probability(a, b) for a, b in zip(lo, hi)])
    if n < len(lo):
        raise ValueError(f"{n} stars per batch cannot fill {len(lo)} mass strata; sample more stars")
    target = n * ((1.0 - share) * prob / prob.sum() + share / len(lo))
    count = np.maximum(np.floor(target).astype(int), 1)
    while count.sum() < n:  # largest remainder
        count[np.argmax(target - count)] += 1
    while count.sum() > n:
        count[np.argmax(count - target)] -= 1
    return lo, hi, prob, count


def sample_ages(component: str, galaxy, u: np.ndarray, t_max: float) -> np.ndarray:
    """Stellar ages [yr] of a component from uniform deviates ``u`` (inverse CDF).

    thin: p(tau) ~ exp(-age_rate tau/Gyr) on [0, age_max]; thick: normal(age_mean,
    age_sigma) truncated to (0, t_max]; bulge: ``bulge.age``; bulge_young: uniform on
    ``bulge.young_ages``.
    """
    if component == "thin":
        lam, T = galaxy.thin.age_rate, galaxy.thin.age_max
        return -np.log1p(-u * (1.0 - np.exp(-lam * T))) / lam * GYR
    if component == "thick":
        from scipy.special import ndtr, ndtri

        mu, sig = galaxy.thick.age_mean, galaxy.thick.age_sigma
        a, b = ndtr((0.0 - mu) / sig), ndtr((t_max / GYR - mu) / sig)
        return (mu + sig * ndtri(a + u * (b - a))) * GYR
    if component == "bulge":
        return np.full(u.shape, galaxy.bulge.age * GYR)
    if component == "bulge_young":
        lo, hi = galaxy.bulge.young_ages
        return (lo + u * (hi - lo)) * GYR
    raise ValueError(f"unknown component {component!r}")


def age_cdf(component: str, galaxy, t: ArrayLike, t_max: float) -> np.ndarray:
    """Fraction of a component's stars younger than ``t`` [yr] (the CDF behind :func:`sample_ages`)."""
    t = np.asarray(t, float)
    if component == "thin":
        lam, T = galaxy.thin.age_rate, galaxy.thin.age_max
        x = np.clip(t / GYR, 0.0, T)
        return -np.expm1(-lam * x) / -np.expm1(-lam * T)
    if component == "thick":
        from scipy.special import ndtr

        mu, sig = galaxy.thick.age_mean, galaxy.thick.age_sigma
        a, b = ndtr((0.0 - mu) / sig), ndtr((t_max / GYR - mu) / sig)
        return np.clip((ndtr((t / GYR - mu) / sig) - a) / (b - a), 0.0, 1.0)
    if component == "bulge":
        return (t > galaxy.bulge.age * GYR).astype(float)
    if component == "bulge_young":
        lo, hi = galaxy.bulge.young_ages
        return np.clip((t / GYR - lo) / (hi - lo), 0.0, 1.0)
    raise ValueError(f"unknown component {component!r}")


def sample_feh(component: str, galaxy, u: np.ndarray, age: np.ndarray, offset: float) -> np.ndarray:
    """[Fe/H] of a component's stars; ``offset`` is the thin disk's position term (dex)."""
    if component == "thin":
        t = galaxy.thin
        return t.feh0 + t.feh_age_slope * age / GYR + offset
    if component == "thick":
        return np.full(u.shape, galaxy.thick.feh)
    if component in ("bulge", "bulge_young"):
        b = galaxy.bulge
        w = np.asarray(b.feh_weights, float)
        edges = np.cumsum(w / w.sum())
        return np.asarray(b.feh, float)[np.minimum(np.searchsorted(edges, u, side="right"), len(w) - 1)]
    raise ValueError(f"unknown component {component!r}")


def lookup_table(x: np.ndarray, per_step: int = 2) -> tuple[float, float, np.ndarray]:
    """A uniform lookup table over the ascending grid ``x`` for the compiled look-ups of :mod:`tasks.kernels.eep`.

    Parameters
    ----------
    x : numpy.ndarray
        Ascending grid (strictly: log masses of one metallicity, or log metallicities).
    per_step : int
        Bins per smallest grid step: with at least one, a looked-up node is off by at most one.

    Returns
    -------
    x0, inv_h : float
        Start of the table and its bins per unit of ``x``.
    table : numpy.ndarray of int64
        For each bin, the last grid index whose node is at or below the bin's start.
    """
    x = np.asarray(x, float)
    if x.size < 2:
        return float(x[0]) if x.size else 0.0, 0.0, np.zeros(1, np.int64)
    step = float(np.diff(x).min())
    n_bins = int(min(max(np.ceil((x[-1] - x[0]) / step * per_step), 1), 1 << 16))
    inv_h = n_bins / (x[-1] - x[0])
    starts = x[0] + np.arange(n_bins) / inv_h
    return float(x[0]), float(inv_h), np.searchsorted(x, starts, side="right").astype(np.int64) - 1


def batch_rng(seed: int, component: str, batch: int) -> np.random.Generator:
    """The random stream of one (component, batch): independent of workers and chunking."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(COMPONENT_IDS[component], int(batch)))
    return np.random.Generator(np.random.PCG64(ss))


class TemplateLibrary:
    """Template coordinates for the lifetime test and the two per-star template estimators.

    Parameters
    ----------
    mass_init : array_like
        Initial mass of each template [Msun].
    metallicity : array_like
        Z of each template.
    age, duration : array_like
        Age of the snapshot and the time span it stands for [yr].
    stage : array_like of str, optional
        Evolutionary stage of each template (one of :data:`STAGES`); needed by the ``eep``
        estimator.
    valid : array_like of bool, optional
        Templates that may carry weight (default all).  Invalid templates still define
        their track's lifetime and stage boundaries, so leaving one out never shortens a
        star's life; their time is covered by their valid neighbours.

    Notes
    -----
    A *track* is one (mass_init, Z) pair.  Its lifetime is the end of its last snapshot's
    time cell, max(age + duration / 2).  t_life(M, Z) interpolates log t_life linearly in
    log M along each metallicity and then linearly in log Z (clipped to the library).
    The track grid of the ``knn`` estimator (:attr:`neighbour_grid`) and the k-d tree it asks
    for tied stars are built on first use (per worker: see the population stage).
    """

    def __init__(
        self,
        mass_init: ArrayLike,
        metallicity: ArrayLike,
        age: ArrayLike,
        duration: ArrayLike,
        stage: ArrayLike | None = None,
        valid: ArrayLike | None = None,
    ) -> None:
        m, z, a, d = (np.asarray(x, float) for x in (mass_init, metallicity, age, duration))
        if m.size == 0:
            raise LibraryError("the template library is empty: run the templates stage with at least one model")
        if not (np.all(m > 0) and np.all(z > 0) and np.all(a > 0) and np.all(d > 0)):
            raise LibraryError("template masses, metallicities, ages and durations must all be positive")
        ok = np.ones(m.size, bool) if valid is None else np.asarray(valid, bool)
        if not ok.any():
            raise LibraryError("no template of the library is valid: check the templates cube's invalid_reason")
        self.size = m.size
        self.duration = d
        self.valid = ok
        self.mass_range = (float(m.min()), float(m.max()))
        self.z_range = (float(z.min()), float(z.max()))
        self.age_min = float(a.min())
        self._points = np.column_stack([np.log10(m), np.log10(z), np.log10(a)])
        self._valid_index = np.flatnonzero(ok)
        self._tree = None
        self._grid = None
        end = a + 0.5 * d
        self._z_nodes = np.unique(z)
        self._tracks = []
        for zk in self._z_nodes:
            sel = z == zk
            masses = np.unique(m[sel])
            t = np.array([end[sel & (m == mk)].max() for mk in masses])
            self._tracks.append((np.log10(masses), np.log10(t)))
        self._life_args = _lifetime_tables(np.log10(self._z_nodes), self._tracks)
        self._bound_m = np.unique(np.concatenate([xm for xm, _ in self._tracks]))
        self._bound_t = np.max([np.interp(self._bound_m, xm, yt) for xm, yt in self._tracks], axis=0)
        self._phases = None if stage is None else _PhaseGrid(m, z, a, d, np.asarray(stage).astype(str), ok, self._z_nodes)

    @property
    def tree(self):
        """k-d tree of the valid templates in (log10 M, log10 Z, log10 age), built on first use.

        The ``knn`` estimator searches the track grid (:mod:`tasks.kernels.knn`); the tree answers
        only for the stars with tied neighbours, whose order is the tree's traversal order.
        """
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self._points[self._valid_index], balanced_tree=False, leafsize=32)
        return self._tree

    @property
    def neighbour_grid(self) -> tuple[np.ndarray, ...]:
        """The valid templates as :func:`tasks.kernels.knn.nearest` walks them, built on first use.

        ``(node_lz, node_start, track_lm, track_start, tpl_la, tpl_index)``: log10 Z of each
        metallicity node (ascending) and where its tracks start; log10 M of each track
        (ascending per node) and where its templates start; log10 age of each template
        (ascending per track) and its library index.  The coordinates are the k-d tree's, bit for bit.
        """
        if self._grid is None:
            lm, lz, la = self._points[self._valid_index].T
            order = np.lexsort((la, lm, lz))
            lm, lz, la = lm[order], lz[order], la[order]
            new_track = np.flatnonzero(np.concatenate([[True], (lz[1:] != lz[:-1]) | (lm[1:] != lm[:-1])]))
            track_lz = lz[new_track]
            new_node = np.flatnonzero(np.concatenate([[True], track_lz[1:] != track_lz[:-1]]))
            self._grid = (
                track_lz[new_node],
                np.append(new_node, new_track.size).astype(np.int64),
                lm[new_track],
                np.append(new_track, lm.size).astype(np.int64),
                np.ascontiguousarray(la),
                self._valid_index[order].astype(np.int64),
            )
        return self._grid

    def lifetime(self, M: ArrayLike, Z: ArrayLike) -> np.ndarray:
        """Lifetime [yr] of stars of initial mass ``M`` [Msun] and metallicity ``Z`` (clipped to the library)."""
        from tasks.kernels.eep import log_lifetime

        lm = np.log10(np.asarray(M, float))
        z = np.broadcast_to(np.clip(np.asarray(Z, float), *self.z_range), lm.shape)
        out = np.empty(lm.shape)
        log_lifetime(lm.ravel(), np.log10(z).ravel(), *self._life_args, out.reshape(-1))
        return 10.0 ** out

    def alive(self, lm: np.ndarray, logz: np.ndarray, age: np.ndarray, p_young: np.ndarray) -> np.ndarray:
        """Stars that may carry a yield: ``p_young > 0`` and younger than :meth:`lifetime`.

        Parameters
        ----------
        lm, logz : numpy.ndarray
            log10 of the initial mass [Msun] and of the metallicity, already clipped to the library.
        age : numpy.ndarray
            [yr].
        p_young : numpy.ndarray
            Probability of each star's age bound (zero: never alive).
        """
        from tasks.kernels.eep import alive_mask

        out = np.empty(lm.shape, bool)
        alive_mask(lm, logz, age, p_young, *self._life_args, out)
        return out

    def lifetime_bound(self, M: ArrayLike) -> np.ndarray:
        """An upper bound [yr] of :meth:`lifetime` over every metallicity, at initial mass ``M``.

        Every track's log t_life is linear between the union of all track masses, so the
        chord of their maximum there bounds each of them (and their interpolation in log Z).
        """
        return 10.0 ** np.interp(np.log10(np.asarray(M, float)), self._bound_m, self._bound_t)

    def _nearest(self, M: np.ndarray, Z: np.ndarray, age: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Library indices and distances (n, k) of the ``k`` nearest valid templates, nearest first.

        What ``cKDTree.query`` returns (mapped to library indices), bit for bit: the grid search
        of :func:`tasks.kernels.knn.nearest`, and the tree itself for stars with tied neighbours.
        """
        from tasks.kernels.knn import nearest

        if k > 128:  # the weights' sum follows numpy's pairwise order, written out for up to 128 terms
            raise ValueError(f"knn: at most 128 neighbours, got {k}")
        # the tree's query points, by the same numpy calls (their log10 may differ from numba's)
        lm = np.log10(M)
        lz = np.log10(Z)
        la = np.log10(np.maximum(age, self.age_min))
        idx = np.empty((lm.size, k), np.int64)
        dist = np.empty((lm.size, k))
        tied = np.empty(lm.size, bool)
        nearest(lm, lz, la, *self.neighbour_grid, idx, dist, tied)
        if tied.any():
            d, i = self.tree.query(np.column_stack([lm[tied], lz[tied], la[tied]]), k=k)
            dist[tied] = d.reshape(-1, k)
            idx[tied] = self._valid_index[i.reshape(-1, k)]
        return idx, dist

    def neighbours(self, M: ArrayLike, Z: ArrayLike, age: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The paper's Eq. 19 (``knn``): the K nearest valid templates in (log M, log Z, log age).

        Returns indices (n, k) into the library and weights Delta t / distance, normalised
        per star; a template at zero distance takes the whole weight of its star.  ``M``
        [Msun], ``Z`` (within the library's range) and ``age`` [yr] are the stars'.
        """
        from tasks.kernels.knn import neighbour_weights

        k = min(int(k), self._valid_index.size)
        idx, dist = self._nearest(*(np.asarray(x, float) for x in (M, Z, age)), k)
        w = np.empty(idx.shape)
        neighbour_weights(idx, dist, self.duration, w)
        return idx, w

    def add_neighbour_weights(
        self, M: np.ndarray, Z: np.ndarray, age: np.ndarray, weight: np.ndarray, k: int, out: np.ndarray
    ) -> None:
        """Add ``weight`` times each star's :meth:`neighbours` weights into ``out`` (n_models,), in place.

        The same sums as ``numpy.bincount`` of the weights, without the (n, k) weight array.
        ``M`` [Msun], ``Z``, ``age`` [yr]: the stars (living ones only); ``weight``: each
        star's statistical weight.
        """
        from tasks.kernels.knn import accumulate

        k = min(int(k), self._valid_index.size)
        idx, dist = self._nearest(M, Z, age, k)
        accumulate(idx, dist, self.duration, weight, out)

    def phase_weights(self, M: ArrayLike, Z: ArrayLike, age: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Equivalent-evolutionary-phase weights (``eep``) of living stars: indices and weights (n, 8).

        A star of initial mass ``M`` [Msun], metallicity ``Z`` and ``age`` [yr] (younger than
        its lifetime) is placed on its four bracketing tracks in (log M, log Z) at the same
        evolutionary phase (stage + elapsed fraction of the stage, Dotter 2016), and takes on
        each track the two templates of that stage around the phase, linearly in phase.  No
        star takes a template of another stage than its own.  Weights sum to one per star.
        """
        grid = self._require_phases()
        from tasks.kernels.eep import phase_weights

        lm = np.log10(np.asarray(M, float))
        logz = np.log10(np.clip(np.asarray(Z, float), *self.z_range))
        idx = np.empty((lm.size, 8), np.int64)
        w = np.empty((lm.size, 8))
        phase_weights(lm, logz, np.asarray(age, float), *grid.kernel_args, idx, w)
        return idx, w

    def add_phase_weights(
        self, lm: np.ndarray, logz: np.ndarray, age: np.ndarray, weight: np.ndarray, alive: np.ndarray, out: np.ndarray
    ) -> None:
        """Add ``weight`` times each living star's :meth:`phase_weights` into ``out`` (n_models,), in place.

        The same sums as ``numpy.bincount`` of the weights, without the (n, 8) index and weight
        arrays.  ``lm``, ``logz``: log10 initial mass [Msun] and metallicity (clipped to the
        library); ``age`` [yr]; ``weight``: each star's statistical weight; ``alive``: the stars
        to add (:meth:`alive`).
        """
        grid = self._require_phases()
        from tasks.kernels.eep import phase_accumulate

        phase_accumulate(lm, logz, age, weight, alive, *grid.kernel_args, out)

    def _require_phases(self) -> "_PhaseGrid":
        if self._phases is None:
            raise LibraryError("the eep estimator needs each template's stage: build the library with stage=")
        return self._phases

    def check_mass_range(self, m_lo: float, m_hi: float, where: str) -> None:
        """Raise :class:`LibraryError` if the library misses part of [m_lo, m_hi] [Msun] (2% slack)."""
        lo, hi = self.mass_range
        if lo > m_lo * 1.02 or hi < m_hi / 1.02:
            raise LibraryError(
                f"the template library spans {lo:g}-{hi:g} Msun, but {where} samples stars with a yield over "
                f"{m_lo:g}-{m_hi:g} Msun: add templates over that range (templates.masses or more MESA runs) "
                f"or lower galaxy.imf.max_template_mass"
            )


class _PhaseGrid:
    """Stage boundaries of every track and the phases of its valid templates (the ``eep`` estimator).

    Track t has stage boundaries b[t, 0..5]: b[t, 0] the start of its main sequence and
    b[t, s + 1] the end of stage s (a stage the track lacks has zero length, so every
    track has all five).  A template of stage s at age a has phase
    s + (a - b[t, s]) / (b[t, s + 1] - b[t, s]).  A star's boundaries interpolate the
    bracketing tracks' log10 b[1:] (and b[0] linearly) with the weights of
    :meth:`TemplateLibrary.lifetime`, so its last boundary is exactly its lifetime.
    """

    #: Phase span reserved per track in the sorted template keys (five stages, plus room).
    _SPAN = 8.0

    def __init__(self, m, z, a, d, stage, valid, z_nodes) -> None:
        unknown = sorted(set(stage) - set(STAGES))
        if unknown:
            raise LibraryError(f"unknown template stage(s) {unknown}; expected {', '.join(STAGES)}")
        order_of = {name: i for i, name in enumerate(STAGES)}
        s_idx = np.fromiter((order_of[x] for x in stage), np.int64, len(stage))
        key_mz = np.column_stack([z, m])
        tracks, track = np.unique(key_mz, axis=0, return_inverse=True)
        n_t = len(tracks)
        lo = np.full((n_t, len(STAGES)), np.inf)
        hi = np.full((n_t, len(STAGES)), -np.inf)
        np.minimum.at(lo, (track, s_idx), a - 0.5 * d)
        np.maximum.at(hi, (track, s_idx), a + 0.5 * d)
        b = np.zeros((n_t, len(STAGES) + 1))
        b[:, 0] = np.where(np.isfinite(lo[:, 0]), lo[:, 0], 0.0)
        for s in range(len(STAGES)):
            # a missing stage starts and ends where the previous one ended
            b[:, s + 1] = np.where(np.isfinite(hi[:, s]), hi[:, s], b[:, s])
            b[:, s + 1] = np.maximum(b[:, s + 1], b[:, s])
        self.b0 = b[:, 0]
        self.log_b = np.log10(np.maximum(b[:, 1:], 1e-300))
        # per metallicity node: its tracks' log masses (ascending) and track ids
        self.z_nodes = z_nodes
        self.lz = np.log10(z_nodes)
        self.node_lm, self.node_track = [], []
        for zk in z_nodes:
            ids = np.flatnonzero(tracks[:, 0] == zk)
            order = np.argsort(tracks[ids, 1])
            self.node_lm.append(np.log10(tracks[ids[order], 1]))
            self.node_track.append(ids[order])
        # valid templates sorted by (track, phase)
        t_s, t_e = b[track, s_idx], b[track, s_idx + 1]
        frac = np.where(t_e > t_s, (a - t_s) / np.where(t_e > t_s, t_e - t_s, 1.0), 0.5)
        phase = s_idx + np.clip(frac, 0.0, 1.0)
        keep = np.flatnonzero(valid)
        key = track[keep] * self._SPAN + phase[keep]
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.index = keep[order]
        self.track = track[keep][order]
        self.stage = s_idx[keep][order]
        self.phase = phase[keep][order]
        # The compiled kernel's form (tasks/kernels/eep.py, which planning must not import): flat
        # per-node track arrays with lookup tables; one row per track (where each stage starts
        # among the sorted templates and where the track ends, b0, log10 stage ends: eep's
        # TRACK_COLUMNS layout) and one per valid template (eep's TEMPLATE_COLUMNS layout).
        lz_x0, lz_inv_h, lz_table = lookup_table(self.lz)
        node_start = np.cumsum([0] + [x.size for x in self.node_lm]).astype(np.int64)
        tables = [lookup_table(x) for x in self.node_lm]
        tab_start = np.cumsum([0] + [t.size for _, _, t in tables]).astype(np.int64)
        offsets = np.array([*range(len(STAGES) + 1), self._SPAN])
        stage_pos = np.searchsorted(self.key, np.arange(n_t)[:, None] * self._SPAN + offsets).astype(np.int64)
        from_track = np.zeros((n_t, 16))
        from_track[:, : len(STAGES) + 2] = stage_pos
        from_track[:, len(STAGES) + 2] = self.b0
        from_track[:, len(STAGES) + 3 : 2 * len(STAGES) + 3] = self.log_b
        from_template = np.column_stack([self.key, self.phase, self.stage, self.track, self.index]).astype(float)
        self.kernel_args = (
            self.lz, lz_x0, lz_inv_h, lz_table,
            node_start, np.concatenate(self.node_lm), np.concatenate(self.node_track).astype(np.int64),
            np.array([x0 for x0, _, _ in tables]), np.array([h for _, h, _ in tables]), tab_start,
            np.concatenate([t for _, _, t in tables]), from_track, from_template,
        )


def _lifetime_tables(lz: np.ndarray, tracks: list[tuple[np.ndarray, np.ndarray]]) -> tuple:
    """Arguments of :func:`tasks.kernels.eep.log_lifetime` after the stars: nodes, tracks and lookup tables.

    ``lz``: log10 of the metallicity nodes; ``tracks``: per node, (log10 M [Msun], log10
    lifetime [yr]) of its tracks, ascending in mass.
    """
    lz_x0, lz_inv_h, lz_table = lookup_table(lz)
    tables = [lookup_table(xm) for xm, _ in tracks]
    return (
        np.asarray(lz, float), lz_x0, lz_inv_h, lz_table,
        np.cumsum([0] + [xm.size for xm, _ in tracks]).astype(np.int64),
        np.concatenate([xm for xm, _ in tracks]), np.concatenate([yt for _, yt in tracks]),
        np.array([x0 for x0, _, _ in tables]), np.array([h for _, h, _ in tables]),
        np.cumsum([0] + [t.size for _, _, t in tables]).astype(np.int64), np.concatenate([t for _, _, t in tables]),
    )


@dataclass
class PopulationResult:
    """Template weights of one population: per batch and the statistics the cube stores.

    Attributes
    ----------
    weight_batch : numpy.ndarray
        (n_estimators, n_batches, n_models): expected templates per sampled star in each
        batch, for each estimator of ``estimators`` (the same stars for all of them).
    yield_fraction, remnant_fraction, heavy_fraction : float
        Fractions of stars (IMF-weighted, all batches; they add up to one) that carry a
        yield, that are remnants (older than their lifetime), and that are heavier than
        ``max_template_mass`` (zero yield, not sampled).
    clipped_fraction : float
        Fraction of the sampled stars whose Z was clipped to the library's range.
    n_sampled : int
        Stars drawn (all batches).
    """

    weight_batch: np.ndarray
    yield_fraction: float
    remnant_fraction: float
    heavy_fraction: float
    clipped_fraction: float
    n_sampled: int
    estimators: tuple[str, ...] = ("eep",)

    @property
    def weight(self) -> np.ndarray:
        """Mean over batches: templates per sampled star (n_estimators, n_models)."""
        return self.weight_batch.mean(axis=-2)


def population_weights(
    library: TemplateLibrary,
    component: str,
    offsets: ArrayLike,
    galaxy,
    *,
    seed: int,
    n_batches: int,
    stars_per_batch: int,
    t_max: float,
    estimators: Sequence[str] = ("eep",),
) -> list[PopulationResult]:
    """Template weights of one component's populations (one per [Fe/H] offset).

    Parameters
    ----------
    library : TemplateLibrary
    component : str
        One of ``bulge``, ``bulge_young``, ``thin``, ``thick``.
    offsets : array_like
        [Fe/H] position offsets [dex] (thin disk; ``[0.0]`` otherwise).  All offsets share
        the same random draws (common random numbers).
    galaxy : tasks.config.Galaxy
        Population parameters (IMF, strata, ages, metallicities, neighbours, z_sun).
    seed : int
        ``run.seed``.
    n_batches, stars_per_batch : int
        Independent batches and stars in each (their spread is the standard error).
    t_max : float
        Oldest age sampled [yr] (end of the template tracks).
    estimators : sequence of str
        ``eep`` (equivalent evolutionary phase, :meth:`TemplateLibrary.phase_weights`)
        and/or ``knn`` (the paper's Eq. 19, :meth:`TemplateLibrary.neighbours`), each
        applied to the same sampled stars.

    Returns
    -------
    list of PopulationResult
        One per offset, in order.
    """
    imf = IMF(tuple(galaxy.imf.breaks), tuple(galaxy.imf.slopes))
    lo, hi, prob, count = strata_allocation(
        imf, galaxy.imf.strata, galaxy.imf.max_template_mass, stars_per_batch, galaxy.imf.strata_share
    )
    p_total = prob.sum()  # yield-bearing mass range; the rest of the IMF adds zero
    offsets = np.atleast_1d(np.asarray(offsets, float))
    n_models = library.size
    estimators = tuple(estimators)
    unknown = sorted(set(estimators) - set(ESTIMATORS))
    if unknown or not estimators:
        raise ValueError(f"estimators must be among {ESTIMATORS}, got {list(estimators)}")
    W = np.zeros((len(offsets), len(estimators), n_batches, n_models))
    stats = np.zeros((len(offsets), 3))  # yield, remnant, clipped (sums over batches)
    scale = np.repeat(prob / count, count)  # P_s / n_s for every star of a batch
    z_lo, z_hi = library.z_range
    m_floor = library.mass_range[0]
    c_lo, c_hi = imf.cdf(np.repeat(lo, count)), imf.cdf(np.repeat(hi, count))
    for b in range(n_batches):
        rng = batch_rng(seed, component, b)
        u_mass = rng.random(stars_per_batch)
        u_age = rng.random(stars_per_batch)
        u_feh = rng.random(stars_per_batch)
        M = imf.ppf(c_lo + u_mass * (c_hi - c_lo))
        Mq = np.maximum(M, m_floor)  # 0.08-0.1 Msun stars take the lightest templates
        # Ages are drawn below a bound of the star's lifetime and the star carries the
        # probability of that bound: no sample is spent on a certain remnant (a thin-disk
        # 20 Msun star lives 0.1% of the disk's age), and the estimator stays unbiased.
        p_young = age_cdf(component, galaxy, library.lifetime_bound(Mq), t_max)
        age = sample_ages(component, galaxy, u_age * p_young, t_max)
        weight = scale * p_young
        lm = np.log10(Mq)
        for j, off in enumerate(offsets):
            Z_raw = galaxy.z_sun * 10.0 ** sample_feh(component, galaxy, u_feh, age, off)
            Z = np.clip(Z_raw, z_lo, z_hi)
            clipped = (Z != Z_raw).astype(float)
            logz = np.log10(Z)
            alive = library.alive(lm, logz, age, p_young)
            for e, name in enumerate(estimators):
                if name == "eep":
                    library.add_phase_weights(lm, logz, age, weight, alive, W[j, e, b])
                else:
                    library.add_neighbour_weights(
                        Mq[alive], Z[alive], age[alive], weight[alive], galaxy.neighbours, W[j, e, b]
                    )
            living = weight[alive].sum()
            stats[j] += [living, p_total - living, scale @ clipped / p_total]
    out = []
    for j in range(len(offsets)):
        y, r, c = stats[j] / n_batches
        out.append(
            PopulationResult(
                weight_batch=W[j],
                yield_fraction=float(y),
                remnant_fraction=float(r),
                heavy_fraction=float(1.0 - p_total),
                clipped_fraction=float(c),
                n_sampled=int(n_batches * stars_per_batch),
                estimators=estimators,
            )
        )
    return out
