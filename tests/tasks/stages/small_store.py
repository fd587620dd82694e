"""Small but complete configurations for the stage tests (seconds per stage).

The grids come from one file, tests/data/tiny.yaml, the configuration of the session's tiny store
(fixture ``tiny_store`` in the repository's root conftest.py).
"""

from pathlib import Path

from tasks.config import Config, load_config, load_preset, with_overrides

#: The session's tiny store configuration (the quick preset on coarse grids).
TINY_YAML = Path(__file__).parents[2] / "data" / "tiny.yaml"


def tiny_config(**over) -> Config:
    """The configuration of the session's tiny store, with dotted-key overrides.

    ``over`` keys are ``section.key`` or ``section.sub.key`` (for example ``galaxy.thick.age_mean``),
    set by :func:`tasks.config.with_overrides`; a test may rerun stages on a copy of ``tiny_store``
    with one key changed.
    """
    return with_overrides(load_config(TINY_YAML), over)


def small_config(galaxy: dict, sky: dict | None = None, **over) -> Config:
    """tiny.yaml's xsec, templates and yields grids with the quick preset's Galaxy and sky, then
    ``galaxy``/``sky`` settings and dotted-key overrides (see :func:`tiny_config`)."""
    quick = load_preset("quick")
    sections = {"galaxy": quick.galaxy.model_dump(mode="json") | galaxy,
                "sky": quick.sky.model_dump(mode="json") | (sky or {})}
    return with_overrides(with_overrides(load_config(TINY_YAML), sections), over)
