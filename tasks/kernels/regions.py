"""Sky regions and their exact (l, sin b) quadrature (docs/physics.md P7).

A region is a union of boxes in Galactic (l, b) [deg].  Its solid angle is
sum Delta l (sin b2 - sin b1), and its quadrature puts midpoints in l (spacing at most
``dl``) and Gauss-Legendre nodes in sin b, per latitude band, so that region means and
areas do not depend on the resolution of any map.  Latitude bands are split at
0, +-1, +-3, +-7, +-15, +-30 and +-60 deg, where the Galaxy's intensity changes fastest
near the plane.  Pure numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BUILTIN_REGIONS", "Box", "solid_angle", "region_nodes"]

#: (l_min, l_max, b_min, b_max) [deg]; l_min > l_max wraps through 0.
Box = tuple[float, float, float, float]

#: The regions of docs/physics.md P7 (names of docs/design.md).
BUILTIN_REGIONS: dict[str, tuple[Box, ...]] = {
    "galactic_plane": ((0.0, 360.0, -5.0, 5.0),),
    "lhaaso_inner": ((15.0, 125.0, -5.0, 5.0),),
    "lhaaso_outer": ((125.0, 235.0, -5.0, 5.0),),
    "hawc_plane": ((43.0, 73.0, -4.0, 4.0),),
    "inner_galaxy": ((330.0, 30.0, -5.0, 5.0),),
    "high_latitude": ((0.0, 360.0, 20.0, 90.0), (0.0, 360.0, -90.0, -20.0)),
    "all_sky": ((0.0, 360.0, -90.0, 90.0),),
}

_B_BREAKS = np.array([-60.0, -30.0, -15.0, -7.0, -3.0, -1.0, 0.0, 1.0, 3.0, 7.0, 15.0, 30.0, 60.0])


def _width(l0: float, l1: float) -> float:
    w = (l1 - l0) % 360.0
    return 360.0 if w == 0.0 else w


def solid_angle(boxes) -> float:
    """Exact solid angle [sr] of a union of disjoint boxes."""
    return float(sum(np.radians(_width(l0, l1)) * (np.sin(np.radians(b1)) - np.sin(np.radians(b0))) for l0, l1, b0, b1 in boxes))


def region_nodes(boxes, dl: float, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadrature nodes of a region: l [deg], b [deg] and solid-angle weights [sr] (sum = solid angle)."""
    x, wx = np.polynomial.legendre.leggauss(nb)
    ls, bs, ws = [], [], []
    for l0, l1, b0, b1 in boxes:
        width = _width(l0, l1)
        n_l = max(1, int(np.ceil(width / dl)))
        lc = (l0 + (np.arange(n_l) + 0.5) * width / n_l) % 360.0
        dl_rad = np.radians(width / n_l)
        edges = np.concatenate([[b0], _B_BREAKS[(_B_BREAKS > b0) & (_B_BREAKS < b1)], [b1]])
        for lo, hi in zip(edges[:-1], edges[1:]):
            s0, s1 = np.sin(np.radians(lo)), np.sin(np.radians(hi))
            sb = 0.5 * (s1 + s0) + 0.5 * (s1 - s0) * x
            wb = 0.5 * (s1 - s0) * wx
            L, S = np.meshgrid(lc, sb, indexing="ij")
            ls.append(L.ravel())
            bs.append(np.degrees(np.arcsin(S)).ravel())
            ws.append(np.outer(np.full(n_l, dl_rad), wb).ravel())
    return np.concatenate(ls), np.concatenate(bs), np.concatenate(ws)
