"""A small but complete configuration for the Galaxy stage tests (seconds per stage), and the
configuration of the session's tiny store (tests/data/tiny.yaml, fixture ``tiny_store``)."""

from tasks.config import Config, load_preset, with_overrides


def small_config(galaxy: dict, sky: dict | None = None, **over) -> Config:
    """The quick preset on coarse grids, with ``galaxy``/``sky`` settings and dotted-key overrides.

    ``over`` keys are ``section.key`` or ``section.sub.key`` (for example ``galaxy.thick.age_mean``),
    set by :func:`tasks.config.with_overrides`.
    """
    d = load_preset("quick").model_dump()
    d["xsec"] = {"E_p": {"min": 0.1, "max": 1.0e5, "per_decade": 5}, "energy": {"min": 0.1, "max": 1.0e3, "per_decade": 4}, "chunk": 16}
    d["templates"].update(
        masses=[0.1, 0.3, 0.8, 1.0, 1.41, 2.0, 5.0, 15.0, 25.0],
        metallicities=[0.002, 0.02],
        snapshots_per_stage={"MS": 3, "RGB": 2, "CHeB": 2, "EAGB": 1, "TPAGB": 1},
        radius_points=120,
        chunk=64,
    )
    d["yields"].update(chunk=64)
    d["galaxy"].update(galaxy)
    d["sky"].update(sky or {})
    return with_overrides(Config.model_validate(d), over)


#: Galaxy and sky settings of tests/data/tiny.yaml (on top of :func:`small_config`'s grids).
TINY_GALAXY = dict(stars_per_population=4000, batches=4, R_points=9, z_points=6, chunk=3)
TINY_SKY = dict(nside=8, steps=64, chunk=256, region_dl=2.0, region_b_nodes=4)


def tiny_config(**over) -> Config:
    """The configuration of the session's tiny store, with dotted-key overrides (see :func:`small_config`).

    Equal to ``load_config(tests/data/tiny.yaml)`` without overrides (checked in test_population),
    so a test may rerun stages on a copy of ``tiny_store`` with one key changed.
    """
    return small_config(TINY_GALAXY, TINY_SKY, **over)
