"""Why M dwarfs are faint in the mirroring scenario: the factors of their time-weighted L_gamma.

Run from the repository root on a store that holds the ``xsec``, ``templates`` and ``yields``
cubes (e.g. the quick preset):

    PYTHONPATH=. python -m tasks.cli run --preset quick --store q.zarr --stages yields
    PYTHONPATH=. python benchmarks/lowmass_decomposition.py q.zarr [--sensitivity]

For each mass (nearest library mass, Z nearest 0.02, main-sequence templates, weights = the
template ``duration``) the time-weighted mirroring-scenario L_gamma(1-100 TeV) =
int_1^100 E L dE [TeV s^-1] is split, relative to the 1 Msun track, into

    <F_sur cal L_mirror> = <R^2> x Gbar x Fbar x cal

* ``R^2``  : time-weighted R_star^2 (area);
* ``Gbar`` : pure-mirroring gamma-ray efficiency per unit area, int E L_mirror dE / R^2
             (N_nuc 4 pi^2 int I_p <Gamma_gamma> ... folded with the CR spectrum), R^2-weighted;
* ``Fbar`` : F_sur = min(f_struct f_age, 1), L_mirror-weighted (its plain time average is also shown);
* ``cal``  : the HAWC calibration factor, the same for every star (ratio 1);

and the ballistic share (1 - F_sur) L_ballistic, which is the floor. The structure columns
are those of the template nearest the middle of the main sequence: Teff, log g, the density at
the photosphere, the largest v_conv, and the magnetic column Phi(Y) = int B dh (B =
sqrt(4 pi f_B rho) v_conv, paper Eq. 6) reached at the vertical column Y = lambda_pair
(90 g cm^-2), which sets the highest proton energy turned inside the gamma-ray skin,
E_max ~ 300 Phi [eV] (``E_turn`` column, TeV). ``need Gbar`` is the per-area efficiency a
mass would need for L(M) = L(1 Msun) at its R^2 and Fbar.

``--sensitivity`` recomputes Gbar with v_conv doubled and held at its maximum from the
photosphere down to its peak (an upper bound on any plausible near-surface structure error,
e.g. convection reaching the photosphere of the coolest models once H2 is in the EOS).
"""

from __future__ import annotations

import argparse

import numpy as np

import cube
from catalogs.cr_spectrum import proton_intensity
from tasks.config import Config
from tasks.kernels.ballistic import lambda_pair
from tasks.kernels.luminosity import log_trapezoid_weights, template_luminosity
from tasks.kernels.mirroring import slab_nodes
from tasks.stages.yields import kernel_arguments, surface_parameters

MASSES = (0.1, 0.3, 0.5, 0.8, 1.0, 1.2)


def _config(y) -> Config:
    c = y.attrs["config"]
    return Config.model_validate({k: c[k] for k in ("cosmic_rays", "interactions", "mirroring", "yields")})


def _extend_top(v: np.ndarray) -> np.ndarray:
    v = v.copy()
    for k in range(v.shape[0]):
        j = int(np.argmax(v[k]))
        v[k, j:] = v[k, j]
    return v


def decompose(store, masses=MASSES, z=0.02, sensitivity=False) -> list[dict]:
    tpl = cube.open(store, "templates").load()
    xs = cube.open(store, "xsec").load()
    y = cube.open(store, "yields").load()
    cfg = _config(y)
    args = kernel_arguments(cfg)
    cr, surf = args.pop("cr"), args.pop("surface")
    cal = float(y.attrs["hawc_calibration"])
    X = cfg.interactions.hydrogen_fraction
    lam_g = float(lambda_pair(X))
    E = y.energy.values
    sel = (E >= 1.0 - 1e-9) & (E <= 100.0 + 1e-9)
    w = log_trapezoid_weights(E[sel]) * E[sel]
    dsig = np.moveaxis(xs.dsigma_dE.sel(messenger=["gamma", "nu"]).values, -1, 0)
    ip = proton_intensity(xs.E_p.values, **cr)
    m_all, z_all = tpl.mass_init.values, tpl.metallicity.values
    ms = tpl.stage.values.astype(str) == "MS"
    z_lib = np.unique(z_all[ms])
    z_use = z_lib[np.argmin(np.abs(np.log(z_lib / z)))]
    rows = []
    for M in masses:
        m_lib = np.unique(m_all[ms & np.isclose(z_all, z_use)])
        mk = m_lib[np.argmin(np.abs(np.log(m_lib / M)))]
        idx = np.flatnonzero(ms & np.isclose(z_all, z_use) & np.isclose(m_all, mk))
        t = tpl.isel(model=idx)
        d = t.duration.values
        wt = d / d.sum()
        stage = t.stage.values.astype(str)
        fb, F = surface_parameters(t.mass_init.values, t.age.values, stage, args["m_kraft"], surf)

        def run(v):
            return template_luminosity(
                t.radius.values, t.rho.values, v, t.column.values, t.R_star.values, t.mass_init.values,
                t.age.values, stage, xs.E_p.values, xs.sigma_inel.values, dsig, X=X, calibration=cal,
                intensity=ip, f_B=fb, F_sur=F, **args)

        res = run(t.v_conv.values)
        Lm = res.L_mirror[:, 0][:, sel] @ w
        Lb = res.L[:, 0, 0][:, sel] @ w
        Lmix = res.L[:, 1, 0][:, sel] @ w
        R2 = t.R_star.values**2
        row = {
            "M": float(mk), "R2": float(wt @ R2), "G": float((wt @ Lm) / (wt @ R2)),
            "F": float((wt * F) @ Lm / (wt @ Lm)), "F_time": float(wt @ F), "cal": cal,
            "mirror": float(wt @ (F * cal * Lm)), "ballistic": float(wt @ ((1 - F) * Lb)), "L": float(wt @ Lmix),
            "stored": float(wt @ (y.luminosity.isel(model=idx).sel(scenario="mirroring", messenger="gamma").values[:, sel] @ w)),
        }
        if sensitivity:
            Lm2 = run(2.0 * _extend_top(t.v_conv.values)).L_mirror[:, 0][:, sel] @ w
            row["G_sens"] = float((wt @ Lm2) / (wt @ R2))
        k = int(np.argmin(np.abs(np.cumsum(wt) - 0.5)))
        Y, P = slab_nodes(t.radius.values, t.rho.values[[k]], t.v_conv.values[[k]], t.column.values[[k]],
                          t.R_star.values[[k]], fb[[k]])
        phi = float(np.interp(lam_g, Y[0], P[0]))
        g = 6.674e-8 * 1.98841e33 * float(t.M_star.values[k]) / float(t.R_star.values[k]) ** 2
        row.update(Teff=float(t.Teff.values[k]), logg=float(np.log10(g)), rho_ph=float(t.rho.values[k, -1]),
                   vmax=float(t.v_conv.values[k].max()), phi=phi, E_turn=phi * 299.792458 / 1e12, f_B=float(fb[k]))
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store")
    ap.add_argument("--sensitivity", action="store_true")
    a = ap.parse_args()
    rows = decompose(a.store, sensitivity=a.sensitivity)
    ref = next(r for r in rows if np.isclose(r["M"], 1.0))
    print(f"HAWC calibration x {ref['cal']:.4g} (same for every star)")
    head = ("M", "R^2", "Gbar", "Fbar", "Fbar(t)", "mirror", "ballist.", "L_total", "need Gbar", "Teff", "log g",
            "rho_ph", "vmax km/s", "f_B", "Phi(90)", "E_turn TeV")
    print(" ".join(f"{h:>10}" for h in head) + ("  Gbar(v x2, top)" if a.sensitivity else ""))
    for r in rows:
        cells = [r["M"], r["R2"] / ref["R2"], r["G"] / ref["G"], r["F"] / ref["F"], r["F_time"], r["mirror"] / ref["mirror"],
                 r["ballistic"] / ref["L"], r["L"] / ref["L"], ref["R2"] * ref["F"] / (r["R2"] * r["F"]), r["Teff"], r["logg"],
                 r["rho_ph"], r["vmax"] / 1e5, r["f_B"], r["phi"], r["E_turn"]]
        extra = f"  {r['G_sens'] / ref['G']:.3g}" if a.sensitivity else ""
        print(" ".join(f"{c:10.3g}" for c in cells) + extra)
    print(f"1 Msun: L_gamma(1-100 TeV) = {ref['L']:.3g} TeV s^-1 (stored cube {ref['stored']:.3g})")


if __name__ == "__main__":
    main()
