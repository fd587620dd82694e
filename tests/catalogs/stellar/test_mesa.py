"""Tests for catalogs.stellar.mesa on real MESA output (mesagrid 1 Msun, Z = 0.0187)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy import constants as const

from catalogs.stellar.grid import radius_grid
from catalogs.stellar.mesa import MesaFormatError, classify_stages, profile_durations, read_mesa_logs
from catalogs.stellar.tracks import TRACK_COLUMNS

LOGS = Path(__file__).resolve().parents[2] / "data" / "mesa" / "mesagrid_1Msun_Z0.0187_subset"
RADIUS = radius_grid(160)
G = const.G.cgs.value
M_SUN = 1.9884098706980504e33  # the msun header value of these files (MESA r24.03.1)
R_SUN = 6.957e10  # the rsun header value of these files


@pytest.fixture(scope="module")
def templates():
    return read_mesa_logs(LOGS, RADIUS)


def _history_span():
    import mesa_reader as mr

    h = mr.MesaData(str(LOGS / "history.data"))
    return float(h.star_age[0]), float(h.star_age[-1])


def test_shapes_and_metadata(templates):
    n = len(templates.metadata)
    assert n == 4
    for arr in (templates.rho, templates.v_conv, templates.column):
        assert arr.shape == (n, RADIUS.size) and np.all(np.isfinite(arr))
    assert set(TRACK_COLUMNS) <= set(templates.metadata.columns)
    md = templates.metadata
    assert np.all(np.diff(md.age) > 0)
    assert np.allclose(md.mass_init, 1.0) and np.allclose(md.metallicity, 0.0187)
    # no conv_vel in these files -> recomputed with the project MLT and flagged
    assert templates.v_conv_source == "mlt_recomputed"
    assert not md.v_conv_from_mesa.any()
    assert templates.source_files[0].endswith("history.data")
    assert len(templates.source_files) == 2 + n


def test_photospheric_density_of_solar_age_profile(templates):
    md = templates.metadata
    i = int(np.argmin(np.abs(md.age - 4.57e9)))
    assert md.age[i] == pytest.approx(5.715e9, rel=1e-3)  # profile4, closest to 4.57 Gyr
    assert 1e-7 < templates.rho[i, -1] < 5e-7
    # solar column depths (docs/physics.md P5): 50 g/cm^2 at ~1.0-1.2e-3 R, 1e4 at ~6e-3 R
    depth = 1 - RADIUS
    assert 0.8e-3 < np.interp(50.0, templates.column[i][::-1], depth[::-1]) < 1.5e-3
    assert 4e-3 < np.interp(1e4, templates.column[i][::-1], depth[::-1]) < 8e-3


def test_column_monotonic_and_surface_value(templates):
    import mesa_reader as mr

    for i, row in templates.metadata.iterrows():
        col = templates.column[i]
        # radius ascends to the surface, so the column must decrease outward
        assert np.all(np.diff(col) < 0)
        prof = mr.MesaData(row.source_file)
        p_surf = 10.0 ** prof.logP[0]
        g = G * prof.header("star_mass") * M_SUN / (prof.header("photosphere_r") * R_SUN) ** 2
        assert col[-1] == pytest.approx(p_surf / g, rel=0.01)
        assert col[0] > 1e10  # through the whole star


def test_density_positive_and_centrally_concentrated(templates):
    assert np.all(templates.rho > 0)
    assert np.all(templates.rho[:, 0] > 50.0)  # solar centre ~150 g/cm^3
    assert np.all(templates.v_conv >= 0)
    # convective envelope: peak v_conv of a few km/s just below the photosphere
    assert np.all((templates.v_conv.max(axis=1) > 1e5) & (templates.v_conv.max(axis=1) < 5e5))


def test_recomputed_convection_zone(templates):
    # local L(r) from the burning rates: a 1 Msun MS star has a radiative core and a
    # convective envelope whose base sits at ~0.71 R (helioseismic 0.713 R for the Sun)
    md = templates.metadata
    assert set(md.L_profile_source) == {"nuclear_integral"}
    assert (md.v_conv_nonfinite_zones == 0).all()
    for i in (0, 1):  # 3.4 and 5.7 Gyr
        conv = templates.v_conv[i] > 0
        assert not conv[RADIUS < 0.5].any()
        assert 0.68 < RADIUS[conv].min() < 0.75  # grid step at depth 0.3 is ~3% of R
        # peak of 2-3 km/s within a few hundred km of the photosphere (docs/physics.md P5)
        j = int(np.argmax(templates.v_conv[i]))
        assert 2e5 < templates.v_conv[i, j] < 3.2e5
        assert (1 - RADIUS[j]) * md.R_star[i] < 3e7


def test_stages_and_durations(templates):
    md = templates.metadata
    assert list(md.stage) == ["MS", "MS", "MS", "RGB"]  # X_c = 0.45, 0.24, 3.3e-4, 3.1e-5
    assert np.all(md.duration > 0)
    t0, t1 = _history_span()
    assert md.duration.sum() == pytest.approx(t1 - t0, rel=1e-12)
    # the RGB profile covers from the end of the MS (first X_c < 1e-4 model) to the last model
    assert md.duration.iloc[-1] == pytest.approx(t1 - 9.15e9, rel=0.01)


def test_classify_and_durations_units():
    xc = np.array([0.7, 0.3, 5e-5, 0.0, 0.0, 0.0, 0.0, 0.0])
    yc = np.array([0.28, 0.68, 0.98, 0.98, 0.5, 0.0, 0.0, 0.0])
    ltc = np.array([7.1, 7.2, 7.4, 8.05, 8.1, 8.2, 8.3, 7.9])  # last: cooling core after pulses
    c12 = np.array([0, 0, 0, 0, 0.2, 0.4, 0.4, 0.4])
    o16 = np.array([0, 0, 0, 0, 0.2, 0.58, 0.58, 0.58])
    he = np.array([0, 0, 0.1, 0.45, 0.5, 0.55, 0.6, 0.61])
    co = np.array([0, 0, 0, 0, 0.2, 0.3, 0.55, 0.56])
    st = classify_stages(xc, yc, ltc, c12, o16, he, co)
    assert list(st) == [0, 0, 1, 2, 2, 3, 4, 4]
    d = profile_durations(np.array([1.0, 3.0, 9.0]), np.array([0, 0, 1]), np.arange(10.0), np.array([0] * 5 + [1] * 5))
    assert list(d) == [2.0, 3.0, 4.0]


# --- malformed input: one MesaFormatError naming the file ---------------------------------


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "LOGS"
    shutil.copytree(LOGS, dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


def _edit_data(path: Path, func) -> None:
    """Rewrite the bulk table (line 6 names, rows below) through ``func(names, rows)``."""
    lines = path.read_text().splitlines()
    names = lines[5].split()
    rows = [ln.split() for ln in lines[6:] if ln.strip()]
    names, rows = func(names, rows)
    path.write_text("\n".join(lines[:5] + [" ".join(names)] + [" ".join(r) for r in rows]) + "\n")


def _expect(logs: Path, filename: str, words: str):
    with pytest.raises(MesaFormatError) as exc:
        read_mesa_logs(logs, RADIUS)
    msg = str(exc.value)
    assert msg.startswith(filename + ":"), msg
    assert words in msg, msg
    assert isinstance(exc.value, ValueError)


def test_truncated_profile(tmp_path):
    logs = _copy(tmp_path)
    p = logs / "profile4.data"
    text = p.read_text()
    p.write_text(text[: len(text) // 2])  # cut mid-row
    _expect(logs, "profile4.data", "truncated")


def test_missing_column(tmp_path):
    logs = _copy(tmp_path)
    _edit_data(logs / "profile3.data", lambda n, r: ([("logRho_x" if x == "logRho" else x) for x in n], r))
    _expect(logs, "profile3.data", "column 'logRho' missing")


def test_non_monotonic_radius(tmp_path):
    logs = _copy(tmp_path)

    def swap(names, rows):
        j = names.index("logR")
        rows[100][j], rows[101][j] = rows[101][j], rows[100][j]
        return names, rows

    _edit_data(logs / "profile7.data", swap)
    _expect(logs, "profile7.data", "radius not monotonic")


def test_nan_density(tmp_path):
    logs = _copy(tmp_path)

    def nan(names, rows):
        rows[50][names.index("logRho")] = "NaN"
        return names, rows

    _edit_data(logs / "profile8.data", nan)
    _expect(logs, "profile8.data", "NaN")


def test_negative_density(tmp_path):
    logs = _copy(tmp_path)

    def negative(names, rows):
        j = names.index("logRho")
        for row in rows:
            row[j] = repr(10.0 ** float(row[j]))
        rows[10][j] = "-1.0E-03"
        return [("rho" if x == "logRho" else x) for x in names], rows

    _edit_data(logs / "profile3.data", negative)
    _expect(logs, "profile3.data", "negative")


def test_truncated_history(tmp_path):
    logs = _copy(tmp_path)
    h = logs / "history.data"
    lines = h.read_text().splitlines()
    h.write_text("\n".join(lines[:-3] + [lines[-3][: len(lines[-3]) // 3]]) + "\n")
    _expect(logs, "history.data", "truncated")


def test_missing_profile_file(tmp_path):
    logs = _copy(tmp_path)
    (logs / "profile8.data").unlink()
    _expect(logs, "profile8.data", "missing")


def test_conv_vel_used_when_present(tmp_path):
    logs = _copy(tmp_path)

    def add_vc(names, rows):
        j = names.index("logR")
        for row in rows:
            # a made-up smooth profile, 1 km/s * r/R: only checks the plumbing
            row.append(repr(1e5 * 10.0 ** float(row[j]) / 10.0 ** float(rows[0][j])))
        return names + ["conv_vel"], rows

    for f in ("profile3.data", "profile4.data", "profile7.data", "profile8.data"):
        _edit_data(logs / f, add_vc)
    t = read_mesa_logs(logs, RADIUS)
    assert t.v_conv_source == "mesa" and t.metadata.v_conv_from_mesa.all()
    assert np.allclose(t.v_conv[:, -1], 1e5, rtol=1e-6)
    inner = RADIUS > 0.01
    assert np.allclose(t.v_conv[:, inner], 1e5 * RADIUS[inner], rtol=1e-3)
