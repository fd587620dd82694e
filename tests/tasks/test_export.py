"""Files written by `stardiffuse export` read back with gammapy, healpy and astropy equal the cubes."""

import subprocess
import sys

import numpy as np
import pytest

import cube



def test_export_round_trip(tiny_store, tmp_path):
    import astropy.units as u
    import healpy as hp
    from astropy.table import Table
    from gammapy.maps import Map
    from gammapy.modeling.models import TemplateSpatialModel

    store = tiny_store
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


def test_export_without_gammapy_writes_the_core_files(tiny_store, tmp_path):
    # A plain install has no gammapy: block its import in the child process, as if absent.
    import healpy as hp
    from astropy.table import Table

    store = tiny_store
    out = tmp_path / "export"
    code = ("import sys; sys.modules['gammapy'] = None; from tasks.cli import main; "
            f"sys.exit(main(['export', '--store', {str(store)!r}, '--out', {str(out)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if "gammapy" in n]
    assert len([n for n in names if n.endswith("_healpy.fits")]) == 4 and "sed.ecsv" in names
    assert "skipped the gammapy maps" in r.stdout and "pip install -e '.[export]'" in r.stdout
    sky = cube.open(store, "sky").load()
    m = hp.read_map(str(out / "sky_ballistic_nu_healpy.fits"), field=0)
    np.testing.assert_array_equal(m, sky.intensity.sel(scenario="ballistic", messenger="nu").isel(energy=0).values)
    assert len(Table.read(out / "sed.ecsv")) > 0
