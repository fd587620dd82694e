"""Line-of-sight integration through the Galaxy (docs/physics.md P7; paper Sec. II E 4).

I(l, b, E) = (1 / 4 pi) integral_0^D q(R(s), z(s), E) ds, observer at (R_sun, z_obs), the ray
ending where it leaves the cylinder R <= R_max, |z| <= z_max (or at ``s_max``).

Quadrature: composite Gauss-Legendre in s, the ray split at its closest approach to the
Galactic centre (where the bulge peaks), ``steps`` nodes in all, shared among segments in
proportion to their length.  Geometry (which (R, z) every node sits at, and with what weight)
does not depend on energy: :func:`ray_nodes` is computed once per set of directions and
applied to every energy, scenario and messenger (the stage collapses it into a small
operator per Galactic component).  Pure numpy: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from tasks.kernels.galaxy import PC_CM

__all__ = ["KPC_CM", "Rays", "ray_nodes", "nodes_per_ray", "exit_distance", "intensity", "interp_weights"]

#: One kpc in cm.
KPC_CM: float = 1e3 * PC_CM

_GL_ORDER = 4


@dataclass(frozen=True)
class Rays:
    """Quadrature nodes of a set of rays.

    Attributes
    ----------
    R, z : numpy.ndarray
        (n_rays, n_nodes) galactocentric radius and signed height [kpc] of each node.
    w : numpy.ndarray
        (n_rays, n_nodes) quadrature weight of each node [kpc]: sum(w) = ray length.
    length : numpy.ndarray
        (n_rays,) length of each ray [kpc].
    s : numpy.ndarray
        (n_rays, n_nodes) distance of each node from the observer [kpc].
    """

    R: np.ndarray
    z: np.ndarray
    w: np.ndarray
    length: np.ndarray
    s: np.ndarray


def nodes_per_ray(steps: int) -> int:
    """Nodes of each ray :func:`ray_nodes` makes for ``steps``: whole Gauss-Legendre segments, at least two."""
    return _GL_ORDER * max(2, -(-int(steps) // _GL_ORDER))


def exit_distance(l_deg: ArrayLike, b_deg: ArrayLike, R_sun: float, z_obs: float, R_max: float, z_max: float) -> np.ndarray:
    """Distance [kpc] from the observer to where the ray leaves R <= R_max, |z| <= z_max."""
    l = np.radians(np.asarray(l_deg, float))
    b = np.radians(np.asarray(b_deg, float))
    cb, sb = np.cos(b), np.sin(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_z = np.where(sb > 0, (z_max - z_obs) / sb, np.where(sb < 0, (z_max + z_obs) / -sb, np.inf))
        disc = np.maximum(R_max**2 - (R_sun * np.sin(l)) ** 2, 0.0)
        s_R = np.where(cb > 1e-15, (R_sun * np.cos(l) + np.sqrt(disc)) / cb, np.inf)
    return np.minimum(s_z, s_R)


def ray_nodes(
    l_deg: ArrayLike,
    b_deg: ArrayLike,
    R_sun: float,
    z_obs: float,
    R_max: float,
    z_max: float,
    steps: int,
    s_max: float | None = None,
) -> Rays:
    """Gauss-Legendre nodes along rays from the observer in directions (l, b) [deg].

    Parameters
    ----------
    l_deg, b_deg : array_like
        Galactic longitude and latitude of each ray [deg] (l = 0 towards the centre).
    R_sun, z_obs : float
        Observer's galactocentric radius and height [kpc].
    R_max, z_max : float
        The Galaxy's extent [kpc].
    steps : int
        Nodes per ray (rounded up to a multiple of 4).
    s_max : float, optional
        End every ray at most this far from the observer [kpc].
    """
    l = np.radians(np.atleast_1d(np.asarray(l_deg, float)))
    b = np.radians(np.atleast_1d(np.asarray(b_deg, float)))
    if abs(z_obs) >= z_max or R_sun >= R_max:
        raise ValueError(f"the observer (R = {R_sun}, z = {z_obs} kpc) must lie inside R_max = {R_max}, z_max = {z_max}")
    D = exit_distance(np.degrees(l), np.degrees(b), R_sun, z_obs, R_max, z_max)
    if s_max is not None:
        D = np.minimum(D, s_max)
    cb, sb, cl, sl = np.cos(b), np.sin(b), np.cos(l), np.sin(l)
    # closest approach to the Galactic centre's axis (the bulge cusp) splits the ray
    s_c = np.clip(R_sun * cb * cl, 0.0, D)
    n_seg = nodes_per_ray(steps) // _GL_ORDER
    x, wx = np.polynomial.legendre.leggauss(_GL_ORDER)
    x, wx = 0.5 * (x + 1.0), 0.5 * wx
    # segments per part, proportional to length, at least one each
    f1 = np.where(D > 0, s_c / np.where(D > 0, D, 1.0), 0.0)
    n1 = np.clip(np.rint(f1 * n_seg).astype(int), 1, n_seg - 1)
    k = np.arange(n_seg)[None, :]
    first = k < n1[:, None]
    h1 = s_c / n1
    h2 = (D - s_c) / (n_seg - n1)
    start = np.where(first, k * h1[:, None], s_c[:, None] + (k - n1[:, None]) * h2[:, None])
    h = np.where(first, h1[:, None], h2[:, None])
    s = (start[:, :, None] + h[:, :, None] * x[None, None, :]).reshape(len(D), -1)
    w = (h[:, :, None] * wx[None, None, :]).reshape(len(D), -1)
    X = R_sun - s * (cb * cl)[:, None]
    Y = s * (cb * sl)[:, None]
    return Rays(R=np.hypot(X, Y), z=z_obs + s * sb[:, None], w=w, length=D, s=s)


def intensity(rays: Rays, q: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """(1 / 4 pi) integral q ds along each ray.

    ``q(R, z)`` takes node arrays (n_rays, n_nodes) [kpc] and returns the emissivity
    [X cm^-3] with shape (n_rays, n_nodes) or (n_rays, n_nodes, ...); the result is in
    [X cm^-2 sr^-1], shape (n_rays, ...).
    """
    val = np.asarray(q(rays.R, rays.z), float)
    w = rays.w.reshape(rays.w.shape + (1,) * (val.ndim - 2))
    return (val * w).sum(axis=1) * KPC_CM / (4.0 * np.pi)


def interp_weights(x: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation on an ascending ``grid``: left index and right-hand weight (clamped at the ends)."""
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, len(grid) - 2)
    t = np.clip((x - grid[i]) / (grid[i + 1] - grid[i]), 0.0, 1.0)
    return i, t
