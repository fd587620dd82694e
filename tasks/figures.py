"""``stardiffuse figures``: the paper's figures (Figs. 2-9) as PNG, drawn from a store's numbers.

Each figure function takes the store and returns ``(figure, data)``: ``data`` holds the
arrays it plotted, so tests can check them against the cubes.  A figure whose cubes are not
in the store is skipped with a line naming the stage to run; nothing is faked.  Monte Carlo
error bands are drawn where the cubes carry them (emissivity, sky, sed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from cube import store as cstore

__all__ = ["FIGURES", "make_figures", "MissingCube"]


class MissingCube(LookupError):
    """A figure's input cube is not in the store (the message names the stage to run)."""


def _need(store, *groups: str):
    out = []
    for g in groups:
        ds = cstore.open_group_if_exists(store, g)
        if ds is None:
            raise MissingCube(f"needs the {g} cube: run `stardiffuse run --stages {g}`")
        out.append(ds)
    return out if len(out) > 1 else out[0]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _sun_row(tpl):
    from tasks.stages.yields import find_sun

    sun = find_sun(tpl)
    if sun is None:
        raise MissingCube("needs a solar template (1 Msun, Z = 0.02 at 4.57 Gyr) in the templates cube")
    return sun


def fig2_solar_density_and_depth(store):
    """Fig. 2: proton density n_p and the 1 TeV optical depths vs depth below the solar photosphere."""
    import astropy.constants as ac

    from catalogs.xsec import sigma_inel

    tpl = _need(store, "templates")
    s = tpl.isel(model=_sun_row(tpl)).load()
    plt = _plt()
    depth_km = ((1 - s.radius) * s.R_star / 1e5).values
    X = 0.70
    n_p = (s.rho * X / ac.m_p.cgs.value).values
    lam_pp = ac.m_p.cgs.value / (float(sigma_inel(np.array([1.0]))[0]) * 1e-27)
    lam_pair = 9.0 / 7.0 / (X / 63.04 + (1 - X) / 94.32)
    tau_pp, tau_pair = s.column.values / lam_pp, s.column.values / lam_pair
    ok = depth_km > 0
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.loglog(depth_km[ok], n_p[ok], label="n_p [cm^-3]")
    ax2 = ax.twinx()
    ax2.loglog(depth_km[ok], tau_pair[ok], "C1", label="tau_gamma (pair), 1 TeV")
    ax2.loglog(depth_km[ok], tau_pp[ok], "C2--", label="tau_pp, 1 TeV proton")
    ax.set_xlabel("depth below the photosphere [km]")
    ax.set_ylabel("proton density n_p [cm^-3]")
    ax2.set_ylabel("vertical optical depth")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="lower right", fontsize=8)
    ax.set_title("The Sun: density and 1 TeV optical depth")
    return fig, {"depth_km": depth_km[ok], "n_p": n_p[ok], "tau_pair": tau_pair[ok], "tau_pp": tau_pp[ok]}


def fig3_surface_fractions(store):
    """Fig. 3: f_struct and f_B vs stellar mass (the configured surface laws of the yields cube)."""
    from tasks.kernels.surface import f_B, f_struct

    y = _need(store, "yields")
    mi = y.attrs["config"]["mirroring"]
    plt = _plt()
    m = np.linspace(0.1, 2.0, 400)
    fs = f_struct(m, nodes=mi["f_struct_nodes"], levels=mi["f_struct_levels"])
    fb = f_B(m, True, f_low=mi["f_B_low"], f_high=mi["f_B_high"], m_full=mi["f_B_mass_low"], m_sun=mi["f_B_mass_high"], m_kraft=mi["max_mass"])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(m, fs, label="f_struct")
    ax.plot(m, fb, label="f_B (main sequence)")
    ax.axvline(mi["max_mass"], color="k", lw=0.8, ls=":", label="Kraft break")
    ax.set_xlabel("stellar mass [Msun]")
    ax.set_ylabel("fraction")
    ax.legend()
    ax.set_title("Surface structure and field fractions")
    return fig, {"mass": m, "f_struct": fs, "f_B": fb}


def _pick_models(tpl) -> dict[str, int]:
    meta = tpl[["mass_init", "metallicity", "age", "stage", "R_star"]].load()
    stage = meta.stage.values.astype(str)
    m = meta.mass_init.values
    out = {"solar-like (1 Msun, MS)": _sun_row(tpl)}
    big = np.flatnonzero(stage == "MS")
    if big.size:
        out[f"{m[big][np.argmin(np.abs(m[big] - 15.0))]:g} Msun, MS"] = int(big[np.argmin(np.abs(m[big] - 15.0))])
    rgb = np.flatnonzero(stage == "RGB")
    if rgb.size:
        i = int(rgb[np.argmax(meta.R_star.values[rgb] * (m[rgb] < 2.5))])
        out[f"red giant ({m[i]:g} Msun)"] = i
    return out


def fig4_profiles(store):
    """Fig. 4: rho(r) and the column vs depth for a solar-like, a 15 Msun and a red-giant template."""
    tpl = _need(store, "templates")
    plt = _plt()
    picks = _pick_models(tpl)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    data = {}
    for label, i in picks.items():
        s = tpl.isel(model=i).load()
        depth = (1 - s.radius).values
        ok = depth > 0
        a1.loglog(depth[ok], s.rho.values[ok], label=label)
        a2.loglog(depth[ok], s.column.values[ok], label=label)
        data[label] = {"model": i, "depth": depth[ok], "rho": s.rho.values[ok], "column": s.column.values[ok]}
    a1.set_xlabel("depth (R - r) / R")
    a1.set_ylabel("rho [g cm^-3]")
    a2.set_xlabel("depth (R - r) / R")
    a2.set_ylabel("column from the surface [g cm^-2]")
    a1.legend(fontsize=8)
    fig.suptitle("Template structure")
    return fig, data


def fig5_solar_sed(store):
    """Fig. 5: the Sun's gamma-ray and neutrino E^2 dN/dE at 1 AU, both scenarios, HAWC and the black sphere."""
    from tasks.report import solar_check

    _need(store, "yields")
    xs = _need(store, "xsec")
    E = np.geomspace(max(0.1, float(xs.energy.min())), min(1e3, float(xs.energy.max())), 60)
    sun = solar_check(store, energies=E)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for scen, ls in (("ballistic", "--"), ("mirroring", "-")):
        ax.loglog(E, sun[scen]["gamma"], "C0" + ls, label=f"gamma, {scen}")
        ax.loglog(E, sun[scen]["nu"], "C1" + ls, label=f"nu (all flavours), {scen}")
    ax.loglog(E, sun["black_sphere"]["gamma"], "k:", label="black sphere (gamma)")
    hw = (E >= 0.5) & (E <= 2.6)
    ax.loglog(E[hw], np.asarray(sun["hawc"])[hw], "C3", lw=3, alpha=0.6, label="HAWC (fit range)")
    ax.set_xlabel("E [TeV]")
    ax.set_ylabel("E^2 dN/dE at 1 AU [TeV cm^-2 s^-1]")
    ax.set_title(f"The quiet Sun (calibration {sun['calibration_mode']} x {sun['calibration']:.3g})")
    ax.legend(fontsize=7)
    return fig, {"energy": E, **{f"{s}_{m}": np.asarray(sun[s][m]) for s in ("ballistic", "mirroring") for m in ("gamma", "nu")}}


def fig6_mass_dependence(store):
    """Fig. 6: time-weighted mean L_gamma (1-100 TeV, ballistic and mirroring) vs initial mass, per Z."""
    y = _need(store, "yields")
    L = y.luminosity.sel(messenger="gamma").load()
    E = L.energy.values
    band = (E >= 1.0) & (E <= 100.0)
    if band.sum() < 2:
        raise MissingCube("needs secondary energies spanning 1-100 TeV in the yields cube")
    # integral of L dE over 1-100 TeV [s^-1], per model
    Lint = np.trapezoid(L.values[..., band], E[band], axis=-1)  # (model, scenario)
    m, z, dt = L.mass_init.values, L.metallicity.values, L.duration.values
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    data = {}
    for zk in np.unique(z):
        masses = np.unique(m[z == zk])
        for j, scen in enumerate(L.scenario.values.astype(str)):
            mean = np.array([np.sum(Lint[(m == mk) & (z == zk), j] * dt[(m == mk) & (z == zk)]) / np.sum(dt[(m == mk) & (z == zk)]) for mk in masses])
            axes[j].loglog(masses, mean, "o-", ms=3, label=f"Z = {zk:g}")
            data[(scen, float(zk))] = (masses, mean)
    for j, scen in enumerate(L.scenario.values.astype(str)):
        axes[j].set_title(scen)
        axes[j].set_xlabel("initial mass [Msun]")
    axes[0].set_ylabel("time-averaged L_gamma(1-100 TeV) [s^-1]")
    axes[0].legend(fontsize=7)
    return fig, data


def fig7_sky_maps(store):
    """Fig. 7: all-sky Mollweide maps of the E > 1 TeV energy flux, gamma rays and neutrinos."""
    import healpy as hp

    sky = _need(store, "sky")
    E = sky.energy.values
    above = E >= 1.0
    if above.sum() < 2:
        raise MissingCube("needs sky energies above 1 TeV")
    plt = _plt()
    fig = plt.figure(figsize=(12, 4))
    data = {}
    for k, msg in enumerate(("gamma", "nu")):
        I = sky.intensity.sel(scenario="ballistic", messenger=msg).isel(energy=np.flatnonzero(above)).transpose("pixel", "energy").values
        eflux = np.trapezoid(I * E[above], E[above], axis=1)  # TeV cm^-2 s^-1 sr^-1
        data[msg] = eflux
        hp.mollview(np.log10(np.maximum(eflux, 1e-300)), fig=fig.number, sub=(1, 2, k + 1),
                    title=f"{msg}: log10 energy flux E > 1 TeV [TeV cm^-2 s^-1 sr^-1] (ballistic)", cbar=True)
    return fig, data


def _band_spectra(band, region, scen, msg, what="mean_intensity"):
    """Values of one spectrum in each of the ``band`` stores (a parameter sweep), shape (n_stores, n_E)."""
    out = []
    for st in band:
        sed = _need(st, "sed")
        out.append(sed[what].sel(region=region, scenario=scen, messenger=msg).values)
    return np.array(out) if out else np.zeros((0, 1))


def _draw_band(ax, E, y, stack, color, data, key):
    if len(stack):
        lo, hi = np.minimum(stack.min(axis=0), y), np.maximum(stack.max(axis=0), y)
        ax.fill_between(E, lo, hi, facecolor="none", edgecolor=color, hatch="///", lw=0.0, alpha=0.6)
        data[("band",) + key] = (lo, hi)


def fig8_plane_spectra(store, band=()):
    """Fig. 8: Galactic-plane gamma-ray spectra with LHAASO (and HAWC's region), neutrinos with IceCube KRA-gamma.

    ``band``: other stores of a parameter sweep; the hatched band spans their spectra.
    """
    from catalogs import observations as obs

    sed = _need(store, "sed").load()
    E = sed.energy.values
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    data = {}
    for region, c in (("lhaaso_inner", "C0"), ("lhaaso_outer", "C1"), ("hawc_plane", "C2")):
        for scen, ls in (("ballistic", "--"), ("mirroring", "-")):
            s = sed.sel(region=region, scenario=scen, messenger="gamma")
            y, e = s.mean_intensity.values * E**2, s.mean_intensity_stderr.values * E**2
            a1.loglog(E, y, c + ls, label=f"{region}, {scen}")
            a1.fill_between(E, np.maximum(y - e, y * 1e-3), y + e, color=c, alpha=0.2)
            data[(region, scen)] = y
            _draw_band(a1, E, y, _band_spectra(band, region, scen, "gamma") * E**2, c, data, (region, scen))
    for region, c in (("inner", "C0"), ("outer", "C1")):
        lh = obs.lhaaso_diffuse(region)
        Ed = lh["energy"].value
        a1.errorbar(Ed, lh["intensity"].value * Ed**2, yerr=lh["stat_up"].value * Ed**2, fmt="o", color=c, ms=3, label=f"LHAASO-KM2A {region}")
    a1.set_xlabel("E [TeV]")
    a1.set_ylabel("E^2 I [TeV cm^-2 s^-1 sr^-1], gamma rays")
    a1.legend(fontsize=6)
    for scen, ls in (("ballistic", "--"), ("mirroring", "-")):
        s = sed.sel(region="all_sky", scenario=scen, messenger="nu")
        y, e = s.flux.values * E**2, s.mean_intensity_stderr.values * s.solid_angle.values * E**2
        a2.loglog(E, y, "C3" + ls, label=f"stars, all sky, {scen}")
        a2.fill_between(E, np.maximum(y - e, y * 1e-3), y + e, color="C3", alpha=0.2)
        data[("nu_all_sky", scen)] = y
        _draw_band(a2, E, y, _band_spectra(band, "all_sky", scen, "nu", "flux") * E**2, "C3", data, ("nu_all_sky", scen))
    for model, c in (("kra5", "k"), ("kra50", "0.5")):
        t = obs.icecube_galactic_plane(model, "all")
        a2.loglog(t["energy"].value, t["e2_flux"].value, color=c, label=f"IceCube KRA-gamma {model[3:]} PeV (all flavours)")
    a2.set_xlabel("E [TeV]")
    a2.set_ylabel("E^2 F [TeV cm^-2 s^-1], all-flavour neutrinos")
    a2.legend(fontsize=6)
    return fig, data


def fig9_high_latitude(store, comparisons=None, band=()):
    """Fig. 9: the |b| > 20 deg gamma-ray spectrum with the Fermi IGRB and its EBL-attenuated extrapolation."""
    from catalogs import observations as obs
    from tasks.config import Comparisons

    c = comparisons or Comparisons()
    sed = _need(store, "sed").load()
    E = sed.energy.values
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    data = {}
    for scen, ls in (("ballistic", "--"), ("mirroring", "-")):
        s = sed.sel(region="high_latitude", scenario=scen, messenger="gamma")
        y, e = s.mean_intensity.values * E**2, s.mean_intensity_stderr.values * E**2
        ax.loglog(E, y, "C0" + ls, label=f"stars, |b| > 20, {scen}")
        ax.fill_between(E, np.maximum(y - e, y * 1e-3), y + e, color="C0", alpha=0.2)
        data[scen] = y
        _draw_band(ax, E, y, _band_spectra(band, "high_latitude", scen, "gamma") * E**2, "C0", data, (scen,))
    f = obs.fermi_igrb(c.igrb_model)
    ax.loglog(f["energy"].value, f["intensity"].value * f["energy"].value ** 2, "ks", ms=3, label=f"Fermi-LAT IGRB (model {c.igrb_model})")
    Ex = np.geomspace(1e-4, E.max(), 200)
    ext = obs.igrb_extrapolation(Ex, c.igrb_model, c.igrb_redshift, c.ebl_model).value * Ex**2
    ax.loglog(Ex, np.maximum(ext, 1e-300), "k-", lw=0.8, label=f"IGRB power law x exp(-tau_EBL), z = {c.igrb_redshift}")
    top = float(np.max(f["intensity"].value * f["energy"].value ** 2)) * 10
    ax.set_ylim(max(1e-30, float(min(data[k].min() for k in ("ballistic", "mirroring"))) / 10), top)
    ax.set_xlabel("E [TeV]")
    ax.set_ylabel("E^2 I [TeV cm^-2 s^-1 sr^-1]")
    ax.legend(fontsize=7)
    data["igrb_extrapolation"] = (Ex, ext)
    return fig, data


FIGURES: dict[str, Callable] = {
    "fig2_solar_density_and_depth": fig2_solar_density_and_depth,
    "fig3_surface_fractions": fig3_surface_fractions,
    "fig4_profiles": fig4_profiles,
    "fig5_solar_sed": fig5_solar_sed,
    "fig6_mass_dependence": fig6_mass_dependence,
    "fig7_sky_maps": fig7_sky_maps,
    "fig8_plane_spectra": fig8_plane_spectra,
    "fig9_high_latitude": fig9_high_latitude,
}


def make_figures(store, out, console=None, band=()) -> dict[str, Path | str]:
    """Draw every figure whose cubes are in ``store`` into ``out``; returns name -> file or the reason it was skipped.

    ``band``: stores of a parameter sweep (``stardiffuse run --sweep``); Figs. 8 and 9 hatch the
    band their spectra span.
    """
    if not Path(store).exists():
        raise cstore.StoreError(f"store {store} does not exist; run `stardiffuse run --store {store}` first")
    plt = _plt()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Path | str] = {}
    for name, fn in FIGURES.items():
        try:
            fig, _ = fn(store, band=band) if name in ("fig8_plane_spectra", "fig9_high_latitude") else fn(store)
        except MissingCube as e:
            result[name] = f"skipped: {e}"
        else:
            path = out / f"{name}.png"
            fig.savefig(path, dpi=110, bbox_inches="tight")
            plt.close(fig)
            result[name] = path
        if console is not None:
            console.print(f"  {name:<30} {result[name]}")
    return result
