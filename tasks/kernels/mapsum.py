"""Summing the Galactic components of a sky map in one pass (docs/physics.md P7).

A map value is I = sum_c A_c L_bar_c, its Monte Carlo variance sum_c (A_c S_c)^2 (components
are independent streams).  numpy spends a pass over the (rays x columns) arrays per operation
(the product, the sum, the square, the variance sum), several hundred MB per chunk at paper
scale; these kernels add one component to ``I`` and ``var`` in one pass.  They do what the
numpy expressions do, in the same order and without fused multiply-adds (numba does not
contract without ``fastmath``), so the map is the same to the bit.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from catalogs.jit import jit_options

__all__ = ["add_outer", "add_dense"]

_JIT = jit_options(__file__)


@nb.njit(**_JIT)
def _add_outer(I, var, a, L, S, first):  # pragma: no cover - compiled
    n, k = I.shape
    for i in range(n):
        ai = a[i]
        for j in range(k):
            p = ai * L[j]
            e = ai * S[j]
            if first:
                I[i, j] = p
                var[i, j] = e * e
            else:
                I[i, j] = I[i, j] + p
                var[i, j] = var[i, j] + e * e


@nb.njit(**_JIT)
def _add_dense(I, var, P, E, first):  # pragma: no cover - compiled
    n, k = I.shape
    for i in range(n):
        for j in range(k):
            e = E[i, j]
            if first:
                I[i, j] = P[i, j]
                var[i, j] = e * e
            else:
                I[i, j] = I[i, j] + P[i, j]
                var[i, j] = var[i, j] + e * e


def add_outer(I: np.ndarray, var: np.ndarray, a: np.ndarray, L: np.ndarray, S: np.ndarray, first: bool) -> None:
    """Add a component whose operator is one column: I += a L, var += (a S)^2, in place.

    Parameters
    ----------
    I, var : (n, k) float64, the intensity [TeV^-1 cm^-2 s^-1 sr^-1] and its variance (its
        square) summed over the components before this one; overwritten if ``first``.
    a : (n,) float64, the component's operator (one column) [stars cm^-2 sr^-1 per star-luminosity unit].
    L, S : (k,) float64, the component's L_bar and its standard error [TeV^-1 s^-1].
    first : bool
        This is the first component: set ``I`` and ``var`` instead of adding to them.

    Each value is ``a[i] * L[j]``, what ``a[:, None] @ L[None]`` gives (one product, no sum),
    added as ``I + part`` and ``var + err**2``.
    """
    _add_outer(I, var, a, L, S, first)


def add_dense(I: np.ndarray, var: np.ndarray, P: np.ndarray, E: np.ndarray, first: bool) -> None:
    """Add a component's intensity ``P`` and its standard error ``E`` (both (n, k) float64): I += P, var += E^2, in place.

    Units as :func:`add_outer`; ``first`` sets ``I = P`` and ``var = E^2`` (what adding them
    to zeros gives, bit for bit: E^2 is never -0).
    """
    _add_dense(I, var, P, E, first)
