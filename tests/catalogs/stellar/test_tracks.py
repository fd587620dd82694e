"""Tests for catalogs.stellar.tracks (real COSMIC-SSE runs, a few stars)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from astropy import constants as const

from catalogs.stellar.tracks import (
    STAGES,
    TRACK_COLUMNS,
    _safe_numeric,
    default_bse_settings,
    evolve_tracks,
)

R_SUN = const.R_sun.cgs.value
PER_STAGE = dict(MS=6, RGB=4, CHeB=3, EAGB=2, TPAGB=2)
HUBBLE_TIME_YR = 1.38e10


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    return evolve_tracks([0.1, 1.0, 15.0], [0.02], snapshots_per_stage=PER_STAGE)


def _track(df, m, z=0.02):
    return df[np.isclose(df.mass_init, m) & np.isclose(df.metallicity, z)]


def test_columns_and_units(grid):
    assert list(grid.columns) == list(TRACK_COLUMNS)
    assert set(grid.stage) <= set(STAGES)
    assert (grid.duration > 0).all()
    assert np.isfinite(grid[["age", "R_star", "M_star", "L_star", "Teff", "log_g"]].to_numpy(float)).all()
    # Sun-like radii are ~7e10 cm: R_star is in cm, not Rsun
    assert 3e10 < _track(grid, 1.0).R_star.iloc[0] < 1e11


def test_durations_add_up_to_lifetime(grid):
    for (m, z), tr in grid.groupby(["mass_init", "metallicity"]):
        assert tr.duration.sum() == pytest.approx(tr.track_lifetime.iloc[0], rel=1e-9), (m, z)
        # equal shares within a stage (except the two neighbours of an extra snapshot)
        for stage, st in tr[~tr.is_extra].groupby("stage"):
            if not tr[(tr.stage == stage) & tr.is_extra].empty:
                continue
            assert np.allclose(st.duration, st.duration.iloc[0], rtol=1e-9), (m, stage)
            assert len(st) == PER_STAGE[stage]


def test_sun_ms_lifetime(grid):
    ms = _track(grid, 1.0)
    t_ms = ms[ms.stage == "MS"].duration.sum()
    assert 9e9 < t_ms < 13e9


def test_solar_snapshot(grid):
    sun = grid[grid.is_extra]
    assert len(sun) == 1
    sun = sun.iloc[0]
    assert sun.age == pytest.approx(4.57e9) and sun.stage == "MS"
    assert sun.R_star / R_SUN == pytest.approx(1.0, rel=0.10)
    assert sun.L_star == pytest.approx(1.0, rel=0.20)
    assert 5400 < sun.Teff < 6100


def test_extra_snapshot_keeps_stage_total():
    base = evolve_tracks([1.0], [0.02], snapshots_per_stage=PER_STAGE, extra_snapshots=[])
    with_sun = evolve_tracks([1.0], [0.02], snapshots_per_stage=PER_STAGE)
    assert len(with_sun) == len(base) + 1
    for stage in STAGES:
        assert with_sun[with_sun.stage == stage].duration.sum() == pytest.approx(
            base[base.stage == stage].duration.sum(), rel=1e-12
        )


def test_red_supergiant(grid):
    big = _track(grid, 15.0)
    assert big.R_star.max() / R_SUN > 500
    assert big.track_complete.all()
    # pre-supernova lifetime of a 15 Msun star: 10-20 Myr
    assert 1e7 < big.track_lifetime.iloc[0] < 2e7


def test_lowest_mass_is_ms_for_a_hubble_time(grid):
    low = _track(grid, 0.1)
    assert (low.stage == "MS").all()
    assert low.track_lifetime.iloc[0] >= HUBBLE_TIME_YR
    assert not low.track_complete.any()


def test_remnants_excluded(grid):
    assert (grid.kstar <= 6).all()
    # no white dwarfs / bare cores / naked He stars disguised as giants
    assert (grid.R_star / R_SUN > 0.05).all()
    post_ms = grid[grid.stage != "MS"]
    assert (post_ms.M_env >= 1e-2).all()
    assert (grid.Teff < 6e4).all()


def test_chunking_and_determinism(grid):
    parts = pd.concat(
        [evolve_tracks([m], [0.02], snapshots_per_stage=PER_STAGE) for m in (0.1, 1.0, 15.0)], ignore_index=True
    )
    pd.testing.assert_frame_equal(parts, grid)


def test_quiet(capfd):
    evolve_tracks([2.0], [0.001], snapshots_per_stage=PER_STAGE)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_metallicity_changes_track():
    df = evolve_tracks([1.0], [1e-4, 0.03], snapshots_per_stage=PER_STAGE, extra_snapshots=[])
    life = df.groupby("metallicity").track_lifetime.first()
    # metal-poor stars are hotter/brighter and live shorter
    assert life[1e-4] < life[0.03]


def test_settings_parsing():
    bse = default_bse_settings()
    assert np.allclose(bse["fprimc_array"], [2.0 / 21.0] * 16)
    assert bse["natal_kick_array"][0][0] == -100.0
    with pytest.raises(ValueError):
        _safe_numeric("__import__('os').getcwd()")
    with pytest.raises(ValueError):
        evolve_tracks([1.0], [0.05])


def test_no_fortran_files_left_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evolve_tracks([0.3, 0.5], [0.02], snapshots_per_stage={"MS": 2}, t_max_yr=1.4e10)
    assert list(tmp_path.iterdir()) == []
    assert os.getcwd() == str(tmp_path)
