"""Convergence and speed of the yields quadrature on real generated main-sequence templates.

Run single-core from the repository root:

    PYTHONPATH=. OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
        python benchmarks/convergence_yields.py [--scratch DIR] [--ms-snapshots 6] \
            [--candidates "6,48,4,0.03,15;4,32,3,0.06,12"]

Templates: the project's own generator (``tasks.stages.templates.model_table`` / ``compute``)
on the paper preset with masses [0.1, 0.3, 0.5, 0.8, 1.0, 1.2, 1.41], Z [0.002, 0.02],
``--ms-snapshots`` snapshots on the main sequence (plus the preset's solar snapshot), paper
radius grid (400 points); only the main-sequence templates (the ones the mirroring kernel
touches) are kept. Cross sections: ``catalogs.xsec`` on the paper grids (E_p 0.1 TeV-100 PeV
and energy 0.1 TeV-10 PeV, 20 per decade). Surface laws, CR spectrum, N_nuc and the HAWC
calibration (computed from the solar template with the candidate's own settings, as the yields
stage does) are the paper preset's.

Reference: n_b = 256, 12 x 96 directions, 8 Gauss nodes, node_tol = 0 (exact piecewise model),
saturation = 40 (cached in ``--scratch``). A candidate is ``n_mu_b,n_gamma,n_gauss,node_tol,
saturation[,u_min,u_max[,alpha_rule,n_gauss_turn[,dark_column]]]`` (n_b = 128; dark column 40,
the reference's inf; u range of the tanh rule in
the direction grid, default [-9, 9]; alpha_rule "half" (default) or "even"; Gauss nodes in the
turning segment, 0 = n_gauss). Reported, max relative deviation from the reference of

* ``scen``: the stored scenario luminosities L[:, scenario, messenger, E], E in 0.1-1000 TeV,
  where L > 1e-6 of its maximum over E (per template, scenario, messenger), all templates;
* ``mir_sun``: the pure L_mirror gamma of the solar template over 0.3-3 TeV (HAWC fit input);
* ``cal``: the HAWC calibration factor;
* ``mir_all`` (information): pure L_mirror gamma and nu of every template, 0.3-3 TeV;

and the speed of ``template_luminosity`` on all the templates (one call, best of ``--repeat``,
after a warm-up call) in templates/s/core.
"""

from __future__ import annotations

import argparse
import tempfile
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalogs import xsec  # noqa: E402
from catalogs.cr_spectrum import proton_intensity  # noqa: E402
from catalogs.stellar.grid import radius_grid  # noqa: E402
from tasks.config import Config, load_preset  # noqa: E402
from tasks.kernels.luminosity import hawc_calibration_factor, template_luminosity  # noqa: E402
from cube.axes import MODEL_COORDS  # noqa: E402
from tasks.stages.templates import TemplatesPayload, compute, model_table  # noqa: E402
from tasks.stages.yields import kernel_arguments, solar_index, surface_parameters  # noqa: E402

MASSES = [0.1, 0.3, 0.5, 0.8, 1.0, 1.2, 1.41]
METALLICITIES = [0.002, 0.02]
REFERENCE = dict(n_b=256, n_mu_b=12, n_gamma=96, n_gauss=8, node_tol=0.0, saturation=40.0, u_min=-9.0, u_max=9.0,
                 dark_column=float("inf"))
DEFAULT_CANDIDATES = (
    "6,48,4,0.03,15;"  # current defaults
    "6,48,3,0.03,15;6,48,2,0.03,15;"
    "6,32,4,0.03,15;6,24,4,0.03,15;6,16,4,0.03,15;"
    "4,48,4,0.03,15;3,48,4,0.03,15;"
    "6,48,4,0.06,15;6,48,4,0.1,15;6,48,4,0.2,15;"
    "6,48,4,0.03,10;6,48,4,0.03,8;"
    # asymmetric tanh-rule range: gamma -> -1 (deflected away from the surface, deep smooth
    # turning) needs few nodes; the grazing layer gamma -> +1 up to 1 - gamma ~ 2e-5 (u = 6)
    "6,48,4,0.03,15,-4,9;6,48,4,0.03,15,-3,9;6,32,4,0.03,15,-5,7;6,24,4,0.03,15,-5,7;"
    "6,32,4,0.03,15,-5,6;6,24,4,0.03,15,-5,6;6,20,4,0.03,15,-5,6;5,24,4,0.03,15,-5,6;"
    "4,32,4,0.03,15,-5,6;6,24,3,0.03,15,-5,6;6,24,2,0.03,15,-5,6;6,24,4,0.05,15,-5,6;"
    "6,24,3,0.04,15,-5,6;6,24,3,0.04,12,-5,6;6,24,3,0.05,12,-5,6;"
    # even Gauss rule in alpha, more Gauss nodes in the turning segment only
    "6,48,4,0.03,15,-9,9,even,0;4,48,4,0.03,15,-9,9,even,0;6,24,3,0.04,12,-5,6,even,0;"
    "6,24,3,0.04,12,-5,6,half,6;6,24,2,0.04,12,-5,6,even,4;6,24,2,0.05,12,-5,6,even,3;"
    "5,24,2,0.04,12,-5,6,even,6"
)


def paper_config(ms_snapshots: int) -> Config:
    d = load_preset("paper").model_dump()
    d["templates"]["masses"] = MASSES
    d["templates"]["metallicities"] = METALLICITIES
    d["templates"]["snapshots_per_stage"] = {k: (ms_snapshots if k == "MS" else 1) for k in d["templates"]["snapshots_per_stage"]}
    return Config.model_validate(d)


def build_templates(cfg: Config, scratch: Path) -> xr.Dataset:
    """Main-sequence templates from the project's generator (tracks cached in scratch/conv.zarr)."""
    t = cfg.templates
    radius = radius_grid(t.radius_points, t.depth_min)
    table, _, _ = model_table(cfg, str(scratch / "conv.zarr"))
    table = table[table["stage"].astype(str) == "MS"].reset_index(drop=True)
    meta = {k: table[k].to_numpy() for k in MODEL_COORDS}
    meta["stage"] = meta["stage"].astype(str)
    meta["source"] = meta["source"].astype(str)
    meta["X"] = table["X"].to_numpy(float)
    payload = TemplatesPayload(radius=radius, meta=meta, alpha_mlt=t.atmosphere.alpha_mlt, profiles=None)
    return compute(0, len(table), payload)


class Runner:
    """template_luminosity on the templates with the paper preset's physics, quadrature as given."""

    def __init__(self, cfg: Config, tpl: xr.Dataset):
        self.tpl = tpl
        self.E_p = cfg.xsec.E_p.values()
        self.E = cfg.xsec.energy.values()
        self.sig = xsec.sigma_inel(self.E_p)
        self.ds = np.stack([xsec.dsigma_dE(m, self.E_p, self.E) for m in ("gamma", "nu")])
        args = kernel_arguments(cfg)
        cr, surface = args.pop("cr"), args.pop("surface")
        self.fixed = {k: args[k] for k in ("N_nuc", "b_depth_min", "include_atmosphere", "m_kraft")}
        self.intensity = proton_intensity(self.E_p, **cr)
        self.X = cfg.interactions.hydrogen_fraction
        stage = tpl.stage.values.astype(str)
        self.stage = stage
        self.fb, self.F = surface_parameters(tpl.mass_init.values, tpl.age.values, stage, args["m_kraft"], surface)
        self.sun = solar_index(tpl)
        self.mi = cfg.mirroring

    def __call__(self, **quad):
        t = self.tpl
        return template_luminosity(
            t.radius.values, t.rho.values, t.v_conv.values, t.column.values, t.R_star.values, t.mass_init.values,
            t.age.values, self.stage, self.E_p, self.sig, self.ds, X=self.X, intensity=self.intensity,
            f_B=self.fb, F_sur=self.F, **self.fixed, **quad,
        )

    def stored(self, res):
        """(L with the HAWC calibration applied as the yields stage does, calibration factor)."""
        s, mi = self.sun, self.mi
        cal = hawc_calibration_factor(self.E, res.L_mirror[s, 0], norm=mi.hawc_norm, index=mi.hawc_index,
                                      e_range=tuple(mi.hawc_range), f_sur=float(res.F_sur[s]),
                                      L_ballistic_sun_gamma=res.L[s, 0, 0], method=mi.hawc_fit, pivot=mi.hawc_pivot)
        f = res.F_sur[:, None, None]
        L = res.L.copy()
        L[:, 1] = f * cal * res.L_mirror + (1.0 - f) * res.L[:, 0]
        return L, cal


def deviations(run: Runner, res, ref) -> dict:
    L, cal = run.stored(res)
    Lr, calr = run.stored(ref)
    E = run.E
    sel = (E >= 0.1) & (E <= 1000.0)
    mask = (Lr > 1e-6 * Lr.max(axis=-1, keepdims=True)) & sel
    d_scen = np.abs(L / np.where(mask, Lr, 1.0) - 1.0)[mask].max()
    h = (E >= 0.3) & (E <= 3.0)
    s = run.sun
    d_sun = np.max(np.abs(res.L_mirror[s, 0, h] / ref.L_mirror[s, 0, h] - 1.0))
    m = ref.L_mirror[:, :, h] > 0
    d_all = np.max(np.abs(res.L_mirror[:, :, h][m] / ref.L_mirror[:, :, h][m] - 1.0))
    return dict(scen=d_scen, mir_sun=d_sun, cal=abs(cal / calr - 1.0), mir_all=d_all)


def speed(run: Runner, repeat: int, **quad) -> float:
    n = run.tpl.sizes["model"]
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        run(**quad)
        best = min(best, time.perf_counter() - t0)
    return n / best


def parse(c: str) -> dict:
    p = c.split(",")
    q = dict(n_mu_b=int(p[0]), n_gamma=int(p[1]), n_gauss=int(p[2]), node_tol=float(p[3]), saturation=float(p[4]),
             u_min=-9.0, u_max=9.0, dark_column=40.0)
    if len(p) > 5:  # tanh-rule range u in [u_min, u_max] (default [-9, 9])
        q.update(u_min=float(p[5]), u_max=float(p[6]))
    if len(p) > 7:  # alpha rule ("half" | "even") and Gauss nodes in the turning segment (0: n_gauss)
        q.update(alpha_rule=p[7], n_gauss_turn=int(p[8]) or None)
    if len(p) > 9:  # dark column (inf: integrate every mirrored trajectory)
        q.update(dark_column=float(p[9]))
    return q


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--scratch",
        default=str(Path(tempfile.gettempdir()) / "stardiffuse-convergence"),
        help="folder for cached tracks and the reference result",
    )
    ap.add_argument("--ms-snapshots", type=int, default=6)
    ap.add_argument("--candidates", default=DEFAULT_CANDIDATES)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--extra", default="", help="extra keyword arguments for every candidate, k=v,k=v")
    args = ap.parse_args()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)

    cfg = paper_config(args.ms_snapshots)
    tpl = build_templates(cfg, scratch)
    run = Runner(cfg, tpl)
    n = tpl.sizes["model"]
    print(f"{n} MS templates (masses {MASSES}, Z {METALLICITIES}); n_p={run.E_p.size}, n_E={run.E.size}, "
          f"n_r={tpl.sizes['radius']}; threads=1")

    t0 = time.perf_counter()
    run(**parse("6,48,4,0.03,15"))
    print(f"warm-up (numba compile or cache load): {time.perf_counter() - t0:.1f} s")

    key = "ref_" + "_".join(f"{k}{v}" for k, v in REFERENCE.items()) + f"_ms{args.ms_snapshots}.npz"
    path = scratch / key
    if path.exists():
        z = np.load(path)
        ref = SimpleNamespace(L=z["L"], L_mirror=z["L_mirror"], F_sur=z["F_sur"])
        print(f"reference {REFERENCE}: cached in {path}")
    else:
        t0 = time.perf_counter()
        ref = run(**REFERENCE)
        print(f"reference {REFERENCE}: {n / (time.perf_counter() - t0):.2f} templates/s")
        np.savez(path, L=ref.L, L_mirror=ref.L_mirror, F_sur=ref.F_sur)

    extra = {}
    for kv in filter(None, args.extra.split(",")):
        k, v = kv.split("=")
        extra[k] = type(REFERENCE[k])(v) if k in REFERENCE else (v if k == "alpha_rule" else int(v) if k == "n_gauss_turn" else float(v))
    print(f"{'n_mu_b':>6} {'n_gam':>5} {'n_gs':>4} {'tol':>5} {'sat':>5} {'u_rng':>9} {'alph':>4} {'nt':>2} | {'scen':>8} {'mir_sun':>8} {'cal':>8} "
          f"{'mir_all':>8} | {'tpl/s':>7}")
    for c in filter(None, args.candidates.split(";")):
        q = dict(parse(c), **extra)
        res = run(**q)
        d = deviations(run, res, ref)
        v = speed(run, args.repeat, **q)
        print(f"{q['n_mu_b']:6d} {q['n_gamma']:5d} {q['n_gauss']:4d} {q['node_tol']:5.3f} {q['saturation']:5.1f} "
              f"{q.get('u_min', -9.0):4.1f},{q.get('u_max', 9.0):4.1f} {q.get('alpha_rule', 'half'):>4} "
              f"{q.get('n_gauss_turn') or q['n_gauss']:2d} | "
              f"{d['scen']:8.1e} {d['mir_sun']:8.1e} {d['cal']:8.1e} {d['mir_all']:8.1e} | {v:7.1f}", flush=True)


if __name__ == "__main__":
    main()
