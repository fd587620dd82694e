"""Files written by `stardiffuse export` read back with gammapy, healpy and astropy equal the cubes."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cube

sys.path.insert(0, str(Path(__file__).parent / "stages"))
from test_sky import built  # noqa: E402,F401 - the module-scoped store of the sky tests


def test_export_round_trip(built, tmp_path):  # noqa: F811
    import astropy.units as u
    import healpy as hp
    from astropy.table import Table
    from gammapy.maps import Map
    from gammapy.modeling.models import TemplateSpatialModel

    store, _ = built
    out = tmp_path / "export"
    r = subprocess.run([sys.executable, "-m", "tasks.cli", "export", "--store", str(store), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    sky = cube.open(store, "sky").load()
    E = sky.energy.values
    for scen in ("ballistic", "mirroring"):
        for msg in ("gamma", "nu"):
            want = sky.intensity.sel(scenario=scen, messenger=msg).transpose("energy", "pixel").values
            m = Map.read(out / f"sky_{scen}_{msg}_gammapy.fits")
            assert m.geom.frame == "galactic" and m.geom.nside[0] == 8 and not m.geom.nest
            ax = m.geom.axes["energy_true"]
            np.testing.assert_allclose(ax.center.to_value("TeV"), E, rtol=1e-12)
            assert m.unit == u.Unit("TeV-1 cm-2 s-1 sr-1")
            np.testing.assert_allclose(m.data, want, rtol=1e-6)  # gammapy writes HEALPix columns as float32
            model = TemplateSpatialModel(m, normalize=False)
            assert model.map.geom.axes["energy_true"].nbin == E.size
            path = out / f"sky_{scen}_{msg}_healpy.fits"
            for i in (0, E.size // 2, E.size - 1):
                col, header = hp.read_map(path, field=i, h=True, nest=False)
                np.testing.assert_allclose(col, want[i], rtol=1e-12)
                h = dict(header)
                assert h["COORDSYS"] == "G" and h[f"ENER{i + 1:04d}"] == pytest.approx(E[i], rel=1e-12)
                assert h[f"TUNIT{i + 1}"] == "TeV-1 cm-2 s-1 sr-1"
    t = Table.read(out / "sed.ecsv", format="ascii.ecsv")
    s = cube.open(store, "sed").load()
    assert t["mean_intensity"].unit == u.Unit("TeV-1 cm-2 s-1 sr-1") and t["energy"].unit == u.TeV
    row = (t["region"] == "hawc_plane") & (t["scenario"] == "mirroring") & (t["messenger"] == "gamma")
    np.testing.assert_allclose(t["flux"][row], s.flux.sel(region="hawc_plane", scenario="mirroring", messenger="gamma"), rtol=1e-12)
    np.testing.assert_allclose(t["solid_angle"][row], float(s.solid_angle.sel(region="hawc_plane")), rtol=1e-12)


def test_export_without_a_sky_is_one_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tasks.cli", "export", "--store", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "sky" in r.stderr
