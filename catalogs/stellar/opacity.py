"""Rosseland mean opacity lookup for many compositions at once, from `rm-tables`.

Sources (through the `rm-tables` package, MIT): OPAL (Iglesias & Rogers 1996, ApJ 464,
943; GS98 mixture, set ``GS98hz``) above log T = 4.0 and Ferguson et al. (2005, ApJ 623,
585; GS98, alpha = 0) below log T = 3.75, ramped in log kappa across 3.75-4.0 by
rm-tables itself.

The per-composition callables of rm-tables are evaluated once on a fixed node grid
(X nodes x log Z nodes x log T x log R, R = rho / T6^3) and cached at module level;
lookups are then 4-linear interpolation in (X, log Z, log T, log R) on log10 kappa,
vectorised over arbitrary arrays (one composition per element). Building the table takes
~1 s (63 rm-tables evaluations and their numba kernels): a process loads it instead from the
disk cache of :mod:`catalogs.diskcache` (17.6 MB, ~20 ms), where the first build saves it,
keyed by the rm-tables version, the node grid and the code of the build.

Out of range: X and Z are clipped to the node range; log R is clipped to [-8, 1] (the
value at the nearest tabulated density is held, as rm-tables does); log T is clipped to
[2.71, 8.695] (below 513 K or above 5e8 K no source exists; such points never occur in the
envelopes this is used for).
"""
from __future__ import annotations

import functools
import importlib.metadata
import inspect

import numpy as np

from catalogs.diskcache import cache_directory, cached_array

__all__ = ["rosseland_opacity", "opacity_table", "X_NODES", "Z_NODES"]

X_NODES = np.array([0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 0.8])
Z_NODES = np.array([1e-4, 3e-4, 1e-3, 2e-3, 4e-3, 1e-2, 2e-2, 3e-2, 4e-2])
LOG_T_AXIS = np.linspace(2.71, 8.695, 480)
LOG_R_AXIS = np.linspace(-8.0, 1.0, 73)


@functools.lru_cache(maxsize=4)
def opacity_table(cold: str = "ferguson", opal_set: str = "GS98hz") -> np.ndarray:
    """log10 kappa [cm^2 g^-1] on (X_NODES, Z_NODES, LOG_T_AXIS, LOG_R_AXIS).

    Parameters
    ----------
    cold : str
        rm-tables cold (molecular/dust) source, default Ferguson 2005.
    opal_set : str
        rm-tables OPAL set name (metal mixture).
    """
    key = {
        "format": 1,
        "builder": inspect.getsource(_build_table),
        "rm_tables": importlib.metadata.version("rm-tables"),
        "cold": cold,
        "opal_set": opal_set,
        "nodes": [X_NODES, Z_NODES, LOG_T_AXIS, LOG_R_AXIS],
    }
    return cached_array(cache_directory(__file__), "opacity", key, lambda: _build_table(cold, opal_set))


def _build_table(cold: str, opal_set: str) -> np.ndarray:
    """log10 kappa on the node grid, evaluated through rm-tables (what :func:`opacity_table` caches)."""
    import rm_tables

    TT, RR = np.meshgrid(10.0 ** LOG_T_AXIS, 10.0 ** LOG_R_AXIS, indexing="ij")
    rho = RR * (TT / 1e6) ** 3
    tab = np.empty((X_NODES.size, Z_NODES.size, LOG_T_AXIS.size, LOG_R_AXIS.size))
    for i, X in enumerate(X_NODES):
        for j, Z in enumerate(Z_NODES):
            k = rm_tables.opacity(X=float(X), Z=float(Z), cold=cold, opal_set=opal_set)
            tab[i, j] = np.log10(k(TT, rho))
    return tab


def _frac_index(axis, v):
    """Lower node index and weight for linear interpolation, clipped to the axis."""
    v = np.clip(v, axis[0], axis[-1])
    i = np.clip(np.searchsorted(axis, v, side="right") - 1, 0, axis.size - 2)
    w = (v - axis[i]) / (axis[i + 1] - axis[i])
    return i, w


def _uniform_index(axis, v):
    n = axis.size
    s = (np.clip(v, axis[0], axis[-1]) - axis[0]) / (axis[1] - axis[0])
    i = np.clip(s.astype(np.int64), 0, n - 2)
    return i, s - i


def rosseland_opacity(T, rho, X, Z, cold: str = "ferguson",
                      opal_set: str = "GS98hz") -> np.ndarray:
    """Rosseland mean opacity kappa [cm^2 g^-1].

    Parameters
    ----------
    T : array_like
        Temperature, K.
    rho : array_like
        Density, g cm^-3.
    X, Z : array_like
        Hydrogen and metal mass fractions (broadcast against T, rho).
    cold, opal_set : str
        Passed to :func:`opacity_table`.

    Returns
    -------
    ndarray
        kappa in cm^2 g^-1 (NaN where T or rho is not finite/positive).
    """
    tab = opacity_table(cold, opal_set)
    T, rho, X, Z = np.broadcast_arrays(*(np.asarray(v, float) for v in (T, rho, X, Z)))
    lt = np.log10(T)
    lr = np.log10(rho) - 3.0 * (lt - 6.0)
    bad = ~(np.isfinite(lt) & np.isfinite(lr))
    lt = np.where(bad, 4.0, lt)
    lr = np.where(bad, -4.0, lr)
    ix, wx = _frac_index(X_NODES, X)
    iz, wz = _frac_index(np.log10(Z_NODES), np.log10(np.maximum(Z, 1e-30)))
    it, wt = _uniform_index(LOG_T_AXIS, lt)
    ir, wr = _uniform_index(LOG_R_AXIS, lr)
    flat = tab.reshape(-1)
    nz, nt, nr = tab.shape[1:]
    base = ((ix * nz + iz) * nt + it) * nr + ir
    out = np.zeros(T.shape)
    for dx, fx in ((0, 1 - wx), (1, wx)):
        for dz, fz in ((0, 1 - wz), (1, wz)):
            for dt, ft in ((0, 1 - wt), (1, wt)):
                k = base + ((dx * nz + dz) * nt + dt) * nr
                out += (fx * fz * ft) * ((1 - wr) * flat[k] + wr * flat[k + 1])
    out = np.asarray(10.0 ** out)
    out[bad] = np.nan
    return out if out.ndim else float(out)
