"""The direction and trajectory quadrature the kernel tests were written at.

The kernels take their quadrature from the configuration only (no defaults); these are the
settings the kernels once defaulted to, finer than the configuration's (6 x 48 directions on
u in [-9, 9], 4 Gauss nodes, node_tol 0.03, saturation 15, every trajectory integrated:
dark_column inf), which the tests' tolerances and references assume.
"""

__all__ = ["FINE", "fine_quad"]

FINE = {
    "n_mu_b": 6,
    "n_gamma": 48,
    "n_gauss": 4,
    "saturation": 15.0,
    "node_tol": 0.03,
    "dark_column": float("inf"),
    "u_max": 9.0,
    "u_min": None,
}


def fine_quad(**over) -> dict:
    """:data:`FINE` with some settings replaced."""
    unknown = set(over) - set(FINE)
    if unknown:
        raise TypeError(f"not quadrature settings: {sorted(unknown)}")
    return {**FINE, **over}
