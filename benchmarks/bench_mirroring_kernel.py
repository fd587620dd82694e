"""CPU time per model of the mirroring kernel on paper-grid main-sequence templates, and bit identity.

The floor of a yields-only change (issue #17, ``mirroring.f_B_high``) is
:func:`tasks.kernels.mirroring.mirror_efficiency` on the main-sequence models between
``f_B_mass_low`` and the Kraft mass. This script reads ``--models`` random such templates
(seeded) from an existing paper-preset store (read only), builds the inputs the yields stage
hands the kernel (the store's cross sections, the preset's quadrature, f_B from the surface laws
at ``--f-B-high``) and times each version of the module, one model per call, one core, in this
process, alternating model by model: ``time.process_time`` per model, best of ``--repeat``.
Versions: the module of this checkout and that of each ``--ref`` (a git revision of this repository, e.g.
``main``; its ``tasks/kernels/mirroring.py`` is loaded from a temporary copy). Every output array
of every version is compared with the first one's (``np.array_equal``).

    python benchmarks/bench_mirroring_kernel.py --store /tmp/pp/after.zarr --ref main [--models 40]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def inputs(store: str, n_models: int, f_B_high: float, seed: int) -> tuple[list[dict], dict]:
    """Per-model kernel arguments of ``n_models`` random main-sequence templates with a f_B-dependent field."""
    from cube import store as cstore
    from tasks.config import Config, load_preset
    from tasks.kernels.ballistic import lambda_pair, lambda_pp
    from tasks.kernels.surface import is_main_sequence
    from tasks.stages.yields import _kernel_inputs, _read_inputs, kernel_arguments, surface_parameters

    d = load_preset("paper").model_dump()
    d["mirroring"]["f_B_high"] = f_B_high
    cfg = Config.model_validate(d)
    args = kernel_arguments(cfg)
    xs, tpl = _read_inputs(store)
    E_p, sigma = xs.E_p.values, xs.sigma_inel.values
    m, age, stage = tpl.mass_init.values, tpl.age.values, tpl.stage.values.astype(str)
    fb, _ = surface_parameters(m, age, stage, args["m_kraft"], args["surface"])
    mi = cfg.mirroring
    ms = is_main_sequence(stage)
    cand = np.flatnonzero(ms & (m > mi.f_B_mass_low) & (m <= mi.max_mass) & tpl.valid.values.astype(bool))
    rows = np.sort(np.random.default_rng(seed).choice(cand, size=min(n_models, cand.size), replace=False))
    _, quad = _kernel_inputs({"E_p": E_p, "X": cfg.interactions.hydrogen_fraction}, args)
    lam_pp = lambda_pp(sigma)
    lam_pair = lambda_pair(cfg.interactions.hydrogen_fraction) if args["pair_absorption"] else np.inf
    models = []
    for r in rows:
        t = cstore.read_rows(store, "templates", "model", slice(int(r), int(r) + 1))
        models.append(dict(
            radius=t.radius.values, rho=t.rho.values, v_conv=t.v_conv.values, column=t.column.values,
            R_star=t.R_star.values, f_B=fb[r : r + 1], mass=float(m[r]), row=int(r),
        ))
    return models, dict(E_p=E_p, lam_pp=lam_pp, lam_pair=lam_pair, **quad)


def run(versions: dict, models: list[dict], common: dict, repeat: int) -> tuple[dict, dict]:
    """Best-of-``repeat`` CPU seconds per model and the outputs (G_gamma, G_nu) of each version.

    The versions alternate model by model (and repeat by repeat), so that a change of machine
    load hits them alike.
    """
    best = {name: np.full(len(models), np.inf) for name in versions}
    outs = {name: [] for name in versions}
    for i, md in enumerate(models):
        kw = {k: v for k, v in md.items() if k not in ("mass", "row")}
        for _ in range(repeat):
            for name, mod in versions.items():
                c = time.process_time()
                mod.mirror_efficiency(**kw, **common)
                best[name][i] = min(best[name][i], time.process_time() - c)
        for name, mod in versions.items():
            outs[name].append(mod.mirror_efficiency(**kw, **common))
    return best, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a paper-preset store (only read)")
    ap.add_argument("--ref", action="append", default=[], help="git revision whose kernel to time too (repeat)")
    ap.add_argument("--models", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--f-B-high", type=float, default=0.5, help="f_B_high of the field (any value)")
    args = ap.parse_args()
    models, common = inputs(args.store, args.models, args.f_B_high, args.seed)
    print(f"{len(models)} models, rows {models[0]['row']}..{models[-1]['row']}, "
          f"masses {min(m['mass'] for m in models):.2f}-{max(m['mass'] for m in models):.2f} Msun")
    with tempfile.TemporaryDirectory() as tmp:
        versions = {}
        for i, ref in enumerate(args.ref):
            src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:tasks/kernels/mirroring.py"],
                                 capture_output=True, text=True, check=True).stdout
            path = Path(tmp) / f"mirroring_ref{i}.py"
            path.write_text(src)
            versions[ref] = _load(path, f"mirroring_ref{i}")
        from tasks.kernels import mirroring  # imported by name: numba's on-disk cache is keyed by it

        versions["worktree"] = mirroring
        run(versions, models[:1], common, 1)  # compile outside the timing
        times, outs = run(versions, models, common, args.repeat)
        first = next(iter(versions))
        for name in versions:
            t = times[name]
            same = all(np.array_equal(a, b) for oa, ob in zip(outs[first], outs[name]) for a, b in zip(oa, ob))
            print(f"{name:>10}: {1e3 * t.mean():.2f} ms CPU per model (min {1e3 * t.min():.2f}, max {1e3 * t.max():.2f}),"
                  f" {t.sum():.3f} s in all; every output bitwise equal to {first}'s: {same}")
        for name in list(versions)[1:]:
            print(f"{first} / {name}: x{times[first].sum() / times[name].sum():.3f}")


if __name__ == "__main__":
    main()
