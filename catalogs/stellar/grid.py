"""The radius grid shared by every stellar template.

All templates live on one ``radius = r / R_star`` coordinate so that the
``templates`` cube has a single ``radius`` dimension.  The grid is log-spaced in
depth ``1 - radius`` because everything that matters for gamma rays happens in
the outer 1e-6..1e-2 of the radius, while neutrino chords need the whole star.
"""

from __future__ import annotations

import numpy as np

__all__ = ["radius_grid"]


def radius_grid(n_points: int, depth_min: float = 1e-7) -> np.ndarray:
    """Return the shared radius grid r/R_star, ascending from the centre to the photosphere.

    Parameters
    ----------
    n_points : int
        Number of grid points, >= 3.
    depth_min : float
        Smallest non-zero depth (R - r)/R next to the photosphere, in (0, 1).

    Returns
    -------
    numpy.ndarray
        ``radius`` (dimensionless), shape (n_points,), ``radius[0] == 0`` (centre) and
        ``radius[-1] == 1`` (photosphere, tau = 2/3).
    """
    if n_points < 3:
        raise ValueError(f"radius grid needs at least 3 points, got {n_points}")
    if not 0.0 < depth_min < 1.0:
        raise ValueError(f"depth_min must lie in (0, 1), got {depth_min}")
    depth = np.concatenate([np.logspace(np.log10(depth_min), 0.0, n_points - 1)[::-1], [0.0]])
    return 1.0 - depth
