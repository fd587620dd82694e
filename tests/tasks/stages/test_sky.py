"""The sky and sed stages on a real store: the maps are the line-of-sight integral of the emissivity
model, region spectra are exact in area and independent of nside, and reprocessing is minimal."""

import shutil
import subprocess
import sys
from pathlib import Path

import healpy as hp
import numpy as np
import pytest

import cube
from tasks.cluster import make_client
from tasks.config import Config
from tasks.kernels.galaxy import COMPONENTS, PC_CM, component_densities
from tasks.kernels.los import intensity, interp_weights, ray_nodes
from tasks.runner import run, stage_status
from tasks.stages import STAGES

sys.path.insert(0, str(Path(__file__).parent))
from small_store import small_config  # noqa: E402


def _config(**over) -> Config:
    return small_config(
        dict(stars_per_population=4000, batches=4, R_points=9, z_points=6, chunk=3),
        dict(nside=8, steps=64, chunk=256, region_dl=2.0, region_b_nodes=4),
        **over,
    )


@pytest.fixture(scope="module")
def built(tiny_store, tiny_summary):
    """The session's tiny store (tests/data/tiny.yaml, equal to :func:`_config`) and the run that built it."""
    return tiny_store, tiny_summary


def _copy(store, tmp_path):
    work = tmp_path / "w.zarr"
    shutil.copytree(store, work)
    return work


def _model_intensity(store, l, b, config):
    """Independent evaluation: q(R, z) = sum_c n_c L_bar_c with L_bar_c bilinear on the emissivity grid."""
    e = cube.open(store, "emissivity").load()
    g = config.galaxy
    Lm = e.luminosity_mean.transpose("R", "z", "component", "scenario", "messenger", "energy").values
    Lm = Lm.reshape(Lm.shape[:3] + (-1,))

    def q(R, z):
        i, t = interp_weights(R, e.R.values)
        j, u = interp_weights(np.abs(z), e.z.values)
        dens = component_densities(R, np.abs(z), g)
        out = 0.0
        for c, name in enumerate(COMPONENTS):
            Lc = (
                Lm[i, j, c] * ((1 - t) * (1 - u))[..., None]
                + Lm[i + 1, j, c] * (t * (1 - u))[..., None]
                + Lm[i, j + 1, c] * ((1 - t) * u)[..., None]
                + Lm[i + 1, j + 1, c] * (t * u)[..., None]
            )
            out = out + (dens[name] / g.mean_stellar_mass / PC_CM**3)[..., None] * Lc
        return out

    rays = ray_nodes(l, b, g.R_sun, config.sky.z_observer, g.R_max, g.z_max, config.sky.steps)
    return intensity(rays, q)


def test_cubes_follow_their_schemas(built):
    store, summary = built
    assert summary.stages["sky"].chunks_computed == summary.stages["sky"].chunks_total == 3
    sky = cube.open(store, "sky").load()
    cube.validate(sky, "sky")
    cube.validate(cube.open(store, "sed"), "sed")
    assert sky.attrs["nside"] == 8 and sky.attrs["ordering"] == "RING" and sky.attrs["coordsys"] == "G"
    l, b = hp.pix2ang(8, np.arange(768), lonlat=True)
    np.testing.assert_array_equal(sky.l, l)
    np.testing.assert_array_equal(sky.b, b)
    I = sky.intensity
    assert np.isfinite(I).all() and (I > 0).all()
    assert ((sky.intensity_stderr > 0) & (sky.intensity_stderr < I)).all()


def test_map_is_the_line_of_sight_integral_of_the_emissivity(built):
    store, _ = built
    sky = cube.open(store, "sky").load()
    pix = np.array([0, 100, 300, 383, 384, 500, 767])
    direct = _model_intensity(store, sky.l.values[pix], sky.b.values[pix], _config())
    got = sky.intensity.isel(pixel=pix).transpose("pixel", "scenario", "messenger", "energy").values.reshape(len(pix), -1)
    np.testing.assert_allclose(got, direct, rtol=1e-10)


def test_the_sky_is_brightest_towards_the_centre_and_the_plane(built):
    store, _ = built
    I = cube.open(store, "sky").intensity.sel(scenario="ballistic", messenger="nu").isel(energy=4).load()
    top = I.isel(pixel=int(np.argmax(I.values)))
    assert abs(float(top.b)) < 10 and min(float(top.l), 360 - float(top.l)) < 10
    plane = I.where(np.abs(I.b) < 10).mean()
    pole = I.where(np.abs(I.b) > 60).mean()
    assert float(plane) > 5 * float(pole)


def test_region_spectra(built):
    store, _ = built
    s = cube.open(store, "sed").load()
    assert list(s.region.values) == ["galactic_plane", "lhaaso_inner", "lhaaso_outer", "hawc_plane", "inner_galaxy", "high_latitude", "all_sky"]
    np.testing.assert_allclose(s.solid_angle.sel(region="all_sky"), 4 * np.pi, rtol=1e-12)
    np.testing.assert_allclose(s.solid_angle.sel(region="hawc_plane"), np.radians(30) * 2 * np.sin(np.radians(4)), rtol=1e-12)
    np.testing.assert_allclose(s.flux, s.mean_intensity * s.solid_angle, rtol=1e-12)
    # the all-sky flux of the region quadrature is the sum of a fine map (nside 128: 0.5%; the
    # stage's nside 8 map is 18% off there, which is why regions have their own quadrature)
    from tasks.stages.sky import component_modes, emissivity_inputs, galaxy_intensity

    cfg = _config()
    payload = {"galaxy": cfg.galaxy, "z_obs": 0.0, "steps": cfg.sky.steps, "modes": component_modes(cfg.galaxy)}
    lbar = emissivity_inputs(store, f"test-{store}", payload["modes"])
    l, b = hp.pix2ang(128, np.arange(hp.nside2npix(128)), lonlat=True)
    map_flux = galaxy_intensity(l, b, payload, lbar)[0].sum(axis=0) * hp.nside2pixarea(128)
    all_sky = s.flux.sel(region="all_sky").transpose("scenario", "messenger", "energy").values.ravel()
    np.testing.assert_allclose(all_sky, map_flux, rtol=5e-3)
    # the inner Galaxy outshines the outer plane
    assert (s.mean_intensity.sel(region="inner_galaxy") > s.mean_intensity.sel(region="lhaaso_outer")).all()


def test_regions_do_not_depend_on_the_map_resolution(built, tmp_path):
    work = _copy(built[0], tmp_path)
    res = run(_config(**{"sky.nside": 16, "sky.chunk": 1024}), work, stages=["sky", "sed"]).stages
    assert res["sed"].chunks_computed == 0 and res["sky"].chunks_computed == res["sky"].chunks_total
    a, b = cube.open(built[0], "sed").load(), cube.open(work, "sed").load()
    np.testing.assert_array_equal(a.mean_intensity, b.mean_intensity)


def test_observer_change_recomputes_sky_and_sed_only(built, tmp_path):
    work = _copy(built[0], tmp_path)
    res = run(_config(**{"sky.z_observer": 0.02}), work, stages=["sky", "sed"]).stages
    assert all(res[s].chunks_computed == 0 for s in ("xsec", "templates", "yields", "population", "emissivity"))
    assert res["sky"].chunks_computed == res["sky"].chunks_total
    assert res["sed"].chunks_computed == res["sed"].chunks_total


def test_a_user_region_computes_only_itself(built, tmp_path):
    work = _copy(built[0], tmp_path)
    regions = [{"name": "cygnus", "l": [60.0, 90.0], "b": [-5.0, 5.0]}, {"name": "anticentre_wrap", "l": [350.0, 10.0], "b": [-2.0, 2.0]}]
    cfg = _config(**{"sky.regions": regions})
    assert stage_status(STAGES["sed"], cfg, work)["chunks_total"] == 9
    res = run(cfg, work, stages=["sky", "sed"]).stages
    assert res["sky"].chunks_computed == 0
    assert res["sed"].chunks_computed == 2 and res["sed"].chunks_copied == 7
    s = cube.open(work, "sed").load()
    np.testing.assert_allclose(s.solid_angle.sel(region="anticentre_wrap"), np.radians(20) * 2 * np.sin(np.radians(2)), rtol=1e-12)
    np.testing.assert_array_equal(
        s.mean_intensity.sel(region="hawc_plane"), cube.open(built[0], "sed").mean_intensity.sel(region="hawc_plane")
    )


def test_two_workers_give_the_same_maps(built, tmp_path):
    work = _copy(built[0], tmp_path)
    for g in ("sky", "sed"):
        shutil.rmtree(work / g)
        shutil.rmtree(work / "_ledger" / g)
    with make_client("local", 2) as client:
        run(_config(), work, client=client, stages=["sky", "sed"])
    for g in ("sky", "sed"):
        a, b = cube.open(built[0], g).load(), cube.open(work, g).load()
        for v in a.data_vars:
            assert np.array_equal(a[v].values, b[v].values), (g, v)


@pytest.mark.parametrize(
    "region, fragment",
    [
        ("{name: empty, l: [10, 10], b: [-5, 5]}", "l_min == l_max"),
        ("{name: over, l: [10, 20], b: [-5, 95]}", "within [-90, 90]"),
        ("{name: galactic_plane, l: [10, 20], b: [-5, 5]}", "differ from the built-in ones"),
    ],
)
def test_bad_regions_are_one_clear_error(tmp_path, region, fragment):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"preset: quick\nsky:\n  regions: [{region}]\n")
    r = subprocess.run([sys.executable, "-m", "tasks.cli", "status", "--config", str(cfg), "--store", str(tmp_path / "s.zarr")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr


def test_plane_intensity_converges_in_steps_and_grid(built, tmp_path):
    # docs/physics.md P7 / issue: doubling the line-of-sight nodes or the (R, z) grid moves the
    # Galactic-plane mean intensity by < 1% (densities are analytic at every node; only L_bar
    # is interpolated, and the thin disk's populations share their random numbers across R).
    base = cube.open(built[0], "sed").mean_intensity.sel(region="galactic_plane").load()
    for over in ({"sky.steps": 128}, {"galaxy.R_points": 17, "galaxy.z_points": 11}):
        work = tmp_path / f"w{len(over)}.zarr"
        shutil.copytree(built[0], work)
        run(_config(**over), work, stages=["sed"])
        other = cube.open(work, "sed").mean_intensity.sel(region="galactic_plane").load()
        assert float(np.abs(other / base - 1).max()) < 0.01, over


def test_cmb_attenuation_absorbs_pev_gamma_rays_along_the_path(built, tmp_path):
    from tasks.kernels.cmb import absorption_per_kpc

    work = _copy(built[0], tmp_path)
    cfg = _config(**{"sky.cmb_attenuation": True, "xsec.energy": {"min": 0.1, "max": 1.0e4, "per_decade": 4}})
    # a wider energy grid reaches the PeV: recompute from the yields on
    run(cfg, work, stages=["sky", "sed"])
    plain = tmp_path / "plain.zarr"
    shutil.copytree(work, plain)
    run(_config(**{"xsec.energy": {"min": 0.1, "max": 1.0e4, "per_decade": 4}}), plain, stages=["sky", "sed"])
    a = cube.open(work, "sky").load()
    p = cube.open(plain, "sky").load()
    np.testing.assert_array_equal(a.intensity.sel(messenger="nu"), p.intensity.sel(messenger="nu"))
    np.testing.assert_array_equal(a.intensity.sel(messenger="gamma", energy=10.0), p.intensity.sel(messenger="gamma", energy=10.0))
    # region spectra see the same absorption as the maps
    sa, sp = cube.open(work, "sed").load(), cube.open(plain, "sed").load()
    np.testing.assert_array_equal(sa.mean_intensity.sel(messenger="nu"), sp.mean_intensity.sel(messenger="nu"))
    assert (sa.mean_intensity / sp.mean_intensity).sel(messenger="gamma", energy=1000.0).max() < 1
    ratio = (a.intensity / p.intensity).sel(messenger="gamma", scenario="ballistic", energy=1000.0)
    assert (ratio < 1).all() and float(ratio.min()) < 0.5  # towards the inner Galaxy, ~10-20 kpc of path
    # a direct evaluation with exp(-kappa s) along the same nodes
    pix = np.array([int(np.argmin(ratio.values)), 100, 700])
    g = cfg.galaxy
    e = cube.open(work, "emissivity").load()
    rays = ray_nodes(a.l.values[pix], a.b.values[pix], g.R_sun, 0.0, g.R_max, g.z_max, cfg.sky.steps)
    dens = component_densities(rays.R, np.abs(rays.z), g)
    L = e.luminosity_mean.sel(scenario="ballistic", messenger="gamma", energy=1000.0)
    q = 0.0
    for c in COMPONENTS:
        Lc = np.interp(rays.R, e.R.values, L.sel(component=c).isel(z=0).values)
        q = q + dens[c] / g.mean_stellar_mass / PC_CM**3 * Lc
    kappa = absorption_per_kpc([1000.0])[0]
    from tasks.kernels.los import KPC_CM

    direct = (q * np.exp(-kappa * rays.s) * rays.w).sum(axis=1) * KPC_CM / (4 * np.pi)
    got = a.intensity.sel(messenger="gamma", scenario="ballistic", energy=1000.0).values[pix]
    np.testing.assert_allclose(got, direct, rtol=1e-10)


def test_the_sparse_r_z_operator_equals_the_r_operator_when_l_bar_is_flat_in_z(built):
    # feh_z_slope != 0 makes the thin disk's L_bar vary with z (a sparse R x z operator);
    # with the flat L_bar of this store both operators must give the same sky
    from tasks.stages.sky import component_modes, emissivity_inputs, galaxy_intensity

    store, _ = built
    cfg = _config()
    l, b = hp.pix2ang(8, np.arange(768), lonlat=True)
    modes = component_modes(cfg.galaxy)
    payload = {"galaxy": cfg.galaxy, "z_obs": 0.0, "steps": cfg.sky.steps, "modes": modes}
    flat = galaxy_intensity(l, b, payload, emissivity_inputs(store, f"R-{store}", modes))
    rz = dict(modes, thin="Rz")
    sparse = galaxy_intensity(l, b, dict(payload, modes=rz), emissivity_inputs(store, f"Rz-{store}", rz))
    np.testing.assert_allclose(sparse[0], flat[0], rtol=1e-12)
    np.testing.assert_allclose(sparse[1], flat[1], rtol=1e-12)
