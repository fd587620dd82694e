import pytest

from tasks.config import Config, ConfigError, EnergyGrid, load_config, load_preset


def test_presets_load_and_carry_paper_physics():
    q, p = load_preset("quick"), load_preset("paper")
    for c in (q, p):
        assert c.cosmic_rays.indices == (2.60, 2.85, 2.51, 3.50)
        assert c.cosmic_rays.breaks == (10.0, 340.0, 3300.0)
        assert c.interactions.nuclear_enhancement == 1.8
        assert c.mirroring.calibration == "hawc"
        assert c.galaxy.thin.sigma0 == 1070.0
        assert (1.0, 0.02, 4.57e9) in [tuple(x) for x in c.templates.extra_snapshots]
    assert len(p.templates.masses) * len(p.templates.metallicities) > len(q.templates.masses) * len(
        q.templates.metallicities
    )
    # docs/physics.md P1: at least 0.1 TeV - 100 PeV with >= 10 points per decade
    E = p.xsec.E_p.values()
    assert E[0] <= 0.1 + 1e-12 and E[-1] >= 1e5 - 1e-6 and p.xsec.E_p.per_decade >= 10


def test_energy_grid_extension_keeps_existing_points():
    a = EnergyGrid(min=0.1, max=100.0, per_decade=5).values()
    b = EnergyGrid(min=0.1, max=1000.0, per_decade=5).values()
    assert list(b[: len(a)]) == list(a)


def _write(tmp_path, text):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("xsec:\n  chunks: 3\n", "xsec.chunks: unknown key"),
        ("xsec:\n  chunk: many\n", "xsec.chunk: Input should be a valid integer"),
        ("xsec:\n  E_p: {min: -1, max: 10, per_decade: 5}\n", "xsec.E_p.min: Input should be greater than 0"),
        ("mirroring:\n  f_B_high: 1.2\n", "mirroring.f_B_high: Input should be less than or equal to 1"),
        ("sky:\n  nside: 100\n", "sky.nside: Value error, nside must be a power of two"),
        ("cosmic_rays:\n  breaks: [340, 10, 3300]\n", "cosmic_rays.breaks: Value error, breaks must be ascending"),
        ("templates:\n  masses: [0.05]\n", "templates.masses.0: Input should be greater than or equal to 0.1"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("xsec: [\n", "not valid YAML"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path, text, fragment):
    f = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert fragment in str(e.value)
    assert str(f) in str(e.value)


@pytest.mark.parametrize(
    "key, text",
    [
        ("interactions.flavour_ratio", "interactions:\n  flavour_ratio: [1, 2, 0]\n"),
        ("interactions.neutrino_absorption", "interactions:\n  neutrino_absorption: true\n"),
    ],
)
def test_removed_keys_are_unknown(tmp_path, key, text):
    """Keys that nothing read were removed: an old file setting them is one clear error naming the key."""
    f = _write(tmp_path, "preset: quick\n" + text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert f"{key}: unknown key" in str(e.value)
    assert str(f) in str(e.value)


def test_override_on_top_of_preset(tmp_path):
    f = _write(tmp_path, "preset: quick\nmirroring:\n  calibration: none\n")
    c = load_config(f)
    assert c.mirroring.calibration == "none"
    assert c.templates.masses == load_preset("quick").templates.masses


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "nope.yaml")


def test_config_is_immutable():
    c = load_preset("quick")
    with pytest.raises(Exception):
        c.xsec.chunk = 5
    assert isinstance(c, Config)


#: The quick preset's only departures from the paper's: grids, sample sizes and chunking.
_RESOLUTION = {
    "xsec.E_p.per_decade": "fewer", "xsec.energy.per_decade": "fewer", "xsec.chunk": None,
    "templates.masses": "subset", "templates.metallicities": "subset", "templates.snapshots_per_stage": "fewer",
    "templates.radius_points": "fewer", "templates.chunk": None, "yields.chunk": None,
    "galaxy.stars_per_population": "fewer", "galaxy.batches": "fewer", "galaxy.R_points": "fewer",
    "galaxy.z_points": "fewer", "sky.nside": "fewer", "sky.steps": "fewer", "sky.region_dl": "wider",
    "sky.region_b_nodes": "fewer", "preset": None,
}


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) and k != "snapshots_per_stage" else {key: v})
    return out


def test_quick_preset_keeps_every_physical_parameter_and_coarsens_only_resolution():
    q, p = (_flat(load_preset(n).model_dump(mode="json")) for n in ("quick", "paper"))
    differ = {k for k in p if q[k] != p[k]}
    assert differ <= set(_RESOLUTION), sorted(differ - set(_RESOLUTION))
    for k in differ:
        how = _RESOLUTION[k]
        if how == "fewer":
            assert (all(q[k][s] <= p[k][s] for s in p[k]) if isinstance(p[k], dict) else q[k] <= p[k]), k
        elif how == "wider":
            assert q[k] >= p[k], k
        elif how == "subset":
            assert min(p[k]) <= min(q[k]) and max(q[k]) <= max(p[k]), k
    # every stage's resolution follows the preset: the region quadrature too (issue #17)
    assert {"sky.region_dl", "sky.region_b_nodes", "sky.steps", "sky.nside"} <= differ
