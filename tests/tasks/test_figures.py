"""`stardiffuse figures`: every figure is drawn, from the store's own numbers, or skipped with the stage to run."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cube
from tasks import figures as F


def test_every_figure_is_written_by_the_command(tiny_store, tmp_path):
    store = tiny_store
    out = tmp_path / "figs"
    r = subprocess.run([sys.executable, "-m", "tasks.cli", "figures", "--store", str(store), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(f"{n}.png" for n in F.FIGURES)
    assert all((out / p).stat().st_size > 10_000 for p in pngs)
    assert (out / pngs[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_plot_the_cubes_numbers(tiny_store):
    from tasks.report import solar_check

    store = tiny_store
    # Fig. 5: the solar SED is the report's solar check
    _, d5 = F.fig5_solar_sed(store)
    sun = solar_check(store, energies=d5["energy"])
    np.testing.assert_allclose(d5["mirroring_gamma"], sun["mirroring"]["gamma"], rtol=1e-12)
    # Fig. 7: the energy flux above 1 TeV of every pixel, straight from the sky cube
    _, d7 = F.fig7_sky_maps(store)
    sky = cube.open(store, "sky").load()
    E = sky.energy.values
    I = sky.intensity.sel(scenario="ballistic", messenger="nu").transpose("pixel", "energy").values[:, E >= 1]
    np.testing.assert_allclose(d7["nu"], np.trapezoid(I * E[E >= 1], E[E >= 1], axis=1), rtol=1e-12)
    # Fig. 8: the region spectra of the sed cube
    _, d8 = F.fig8_plane_spectra(store)
    sed = cube.open(store, "sed").load()
    np.testing.assert_allclose(
        d8[("lhaaso_inner", "mirroring")],
        sed.mean_intensity.sel(region="lhaaso_inner", scenario="mirroring", messenger="gamma").values * sed.energy.values**2,
        rtol=1e-12,
    )
    # Fig. 6: time-weighted mean of the 1-100 TeV luminosity of one track
    _, d6 = F.fig6_mass_dependence(store)
    masses, mean = d6[("ballistic", 0.02)]
    y = cube.open(store, "yields").load()
    sel = (y.mass_init == masses[0]) & (y.metallicity == 0.02)
    L = y.luminosity.sel(scenario="ballistic", messenger="gamma").where(sel, drop=True)
    band = (L.energy >= 1) & (L.energy <= 100)
    Lint = np.trapezoid(L.values[:, band.values], L.energy.values[band.values], axis=1)
    assert mean[0] == pytest.approx(np.sum(Lint * L.duration.values) / L.duration.values.sum(), rel=1e-12)
    # Fig. 2: n_p = X rho / m_p of the solar template
    _, d2 = F.fig2_solar_density_and_depth(store)
    assert np.all(np.diff(d2["tau_pair"]) * np.diff(d2["depth_km"]) >= 0)  # deeper is more opaque
    assert d2["tau_pp"][0] / d2["tau_pair"][0] == pytest.approx(
        (9 / 7 / (0.7 / 63.04 + 0.3 / 94.32)) / 47.94, rel=2e-3
    )


def test_structure_figures_plot_the_cubes_numbers(tiny_store):
    from tasks.kernels.surface import f_struct

    store = tiny_store
    _, d3 = F.fig3_surface_fractions(store)
    mi = cube.open(store, "yields").attrs["config"]["mirroring"]
    np.testing.assert_array_equal(d3["f_struct"], f_struct(d3["mass"], nodes=mi["f_struct_nodes"], levels=mi["f_struct_levels"]))
    assert d3["f_B"][d3["mass"] > 1.41].max() == 0.0 and d3["f_B"][0] == 1.0
    _, d4 = F.fig4_profiles(store)
    tpl = cube.open(store, "templates")
    assert len(d4) == 3
    for entry in d4.values():
        rho = tpl.rho.isel(model=entry["model"]).values
        np.testing.assert_array_equal(entry["rho"], rho[(1 - tpl.radius.values) > 0])
    _, d9 = F.fig9_high_latitude(store)
    sed = cube.open(store, "sed").load()
    want = sed.mean_intensity.sel(region="high_latitude", scenario="ballistic", messenger="gamma").values * sed.energy.values**2
    np.testing.assert_allclose(d9["ballistic"], want, rtol=1e-12)


def test_missing_cubes_are_skipped_with_the_stage_to_run(tiny_store, tmp_path):
    # a store with the templates cube only: the session's tiny store without every other cube
    import shutil

    store = tmp_path / "s.zarr"
    shutil.copytree(tiny_store, store)
    for g in ("xsec", "yields", "population", "emissivity", "sky", "sed"):
        shutil.rmtree(store / g)
        shutil.rmtree(store / "_ledger" / g, ignore_errors=True)
    made = F.make_figures(store, tmp_path / "figs")
    assert isinstance(made["fig4_profiles"], Path)
    assert "run `stardiffuse run --stages yields`" in made["fig5_solar_sed"]
    assert "--stages sky" in made["fig7_sky_maps"] and "--stages sed" in made["fig9_high_latitude"]
