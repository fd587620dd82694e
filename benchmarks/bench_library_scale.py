"""How ``templates`` + ``yields`` grow with the stellar library (issue #17: a library 4x the paper's).

The 4x library doubles the paper's mass grid (a geometric midpoint between neighbours: 229
masses) and its metallicities (31): 7,099 tracks against the paper's 1,840 (x3.86).  Its fresh run
would take ~30 min or more on two loaded cores, so a series of fractions of the paper library
is measured instead, each in a fresh store on one ``LocalCluster`` of ``--workers`` workers:

* ``1/16``: every fourth mass x every fourth metallicity (30 x 5);
* ``1/8``: every other mass x every fourth metallicity (59 x 5 = 295 tracks);
* ``1/4``: every other mass x every other metallicity (59 x 8);
* ``1/2``: every mass x every other metallicity (115 x 8);
* ``1`` (``--fractions ... 1``): the paper library (115 x 16);
* ``4`` (``--fractions ... 4``): the 4x library itself.

The Sun's track (1 Msun, Z = 0.02: the mirroring calibration) is added where a subset lacks it.
For each: the fresh run of ``xsec``, ``templates`` and ``yields`` (stage wall seconds, split
into ``prepare`` (track evolution, the envelope screen, the library table), ``plan`` and the
rest: computing and writing the chunks), the no-op rerun (same split) and ``status`` (the two
stages planned in this process, and ``python -m tasks.cli status`` in a new process).  With
``--noop-store`` the no-op and status of an existing store (for example a copy of the paper
store's xsec, templates and yields with their ledgers and caches) are measured too.  Last, a
least-squares line (seconds = a + b x models) per quantity, evaluated at the 4x library: an
extrapolation, printed as such.

    python benchmarks/bench_library_scale.py --fractions 0.125 0.25 0.5 --workers 2
    python benchmarks/bench_library_scale.py --fractions --noop-store PAPER_TY.zarr --previous run1.log
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["library_config", "timed_stages", "measure", "main"]

_STAGES = ("xsec", "templates", "yields")


def _refine(grid: list[float]) -> list[float]:
    """``grid`` with the geometric midpoint of each neighbouring pair inserted (rounded to 4 significant digits)."""
    mids = [float(f"{np.sqrt(a * b):.4g}") for a, b in zip(grid[:-1], grid[1:])]
    return sorted(set(grid) | set(mids))


def library_config(fraction: float):
    """The paper preset with the library scaled by ``fraction`` (1/16, 1/8, 1/4, 1/2, 1 or 4; see the module docstring)."""
    from tasks.config import load_preset, with_overrides

    paper = load_preset("paper")
    m, z = list(paper.templates.masses), list(paper.templates.metallicities)
    grids = {0.0625: (m[::4], z[::4]), 0.125: (m[::2], z[::4]), 0.25: (m[::2], z[::2]), 0.5: (m, z[::2]), 1.0: (m, z), 4.0: (_refine(m), _refine(z))}
    if fraction not in grids:
        raise SystemExit(f"--fractions: choose among {sorted(grids)}, not {fraction}")
    masses, metallicities = grids[fraction]
    # the Sun's track (1 Msun, Z = 0.02) calibrates the mirroring yields (mirroring.calibration: hawc)
    masses, metallicities = sorted({*masses, 1.0}), sorted({*metallicities, 0.02})
    return with_overrides(paper, {"templates.masses": masses, "templates.metallicities": metallicities})


@contextlib.contextmanager
def timed_stages(names=_STAGES):
    """Time the ``prepare`` and ``plan`` of each stage the runner calls, into ``{stage: {"prepare": s, "plan": s}}``."""
    from tasks.stages import STAGES

    saved = {n: STAGES[n] for n in names}
    out = {n: {"prepare": 0.0, "plan": 0.0} for n in names}

    def timed(name, part, fn):
        def wrapper(*args, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                out[name][part] += time.perf_counter() - t0
        return wrapper

    for n, stage in saved.items():
        prepare = timed(n, "prepare", stage.prepare) if stage.prepare is not None else None
        STAGES[n] = dataclasses.replace(stage, prepare=prepare, plan=timed(n, "plan", stage.plan))
    try:
        yield out
    finally:
        STAGES.update(saved)


def _run(cfg, store: Path, client) -> dict:
    from tasks.runner import run

    with timed_stages() as parts:
        res = run(cfg, store, client=client, stages=["yields"]).stages
    return {n: {"seconds": res[n].seconds, "chunks_total": res[n].chunks_total, "chunks_computed": res[n].chunks_computed,
                **parts[n], "rest": res[n].seconds - parts[n]["prepare"] - parts[n]["plan"]} for n in _STAGES}


def _status(cfg, store: Path) -> dict:
    """Seconds of ``stage_status`` of the stages in this process, and of ``tasks.cli status`` in a new one."""
    import yaml

    from tasks.runner import stage_status
    from tasks.stages import STAGES

    out = {}
    for n in _STAGES:
        t0 = time.perf_counter()
        st = stage_status(STAGES[n], cfg, store)
        out[n] = time.perf_counter() - t0
        if st.get("chunks_stale"):
            raise RuntimeError(f"status after a no-op run: {n} has {st['chunks_stale']} stale chunks")
    config = store.parent / f"{store.stem}.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    cmd = [sys.executable, "-m", "tasks.cli", "status", "--store", str(store), "--config", str(config),
           "--stages", ",".join(_STAGES), "--json"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    out["cli_wall"] = time.perf_counter() - t0
    return out


def _models(store: Path) -> int:
    import zarr

    return int(zarr.open_group(str(store), path="templates", mode="r", zarr_format=3)["model"].shape[0])


def measure(fraction: float, workdir: Path, client) -> dict:
    """Fresh run, no-op rerun and status of the library ``fraction`` in a new store under ``workdir`` (deleted after)."""
    cfg = library_config(fraction)
    store = workdir / f"lib-{fraction:g}.zarr"
    try:
        fresh = _run(cfg, store, client)
        noop = _run(cfg, store, client)
        for n in _STAGES:
            if noop[n]["chunks_computed"]:
                raise RuntimeError(f"the no-op run computed {noop[n]['chunks_computed']} chunks of {n}")
        return {"fraction": fraction, "tracks": len(cfg.templates.masses) * len(cfg.templates.metallicities),
                "models": _models(store), "fresh": fresh, "noop": noop, "status": _status(cfg, store)}
    finally:
        shutil.rmtree(store, ignore_errors=True)


def measure_existing(store: Path, fraction: float, client) -> dict:
    """No-op rerun and status of an existing store built with the library ``fraction``."""
    cfg = library_config(fraction)
    noop = _run(cfg, store, client)
    if any(noop[n]["chunks_computed"] for n in _STAGES):
        raise RuntimeError(f"{store} is not up to date with the library {fraction:g}: the no-op run computed chunks")
    return {"fraction": fraction, "tracks": len(cfg.templates.masses) * len(cfg.templates.metallicities),
            "models": _models(store), "noop": noop, "status": _status(cfg, store)}


def _fit(x: list[float], y: list[float], at: float) -> tuple[float, float, float]:
    """Least-squares a + b x through the points, and its value at ``at``."""
    b, a = np.polyfit(x, y, 1)
    return a, b, a + b * at


def _print(rows: list[dict], target_models: int) -> None:
    print("| library | tracks | models | fresh templates: prepare / plan / chunks [s] | fresh yields: prepare / plan / "
          "chunks [s] | no-op templates + yields [s] (plan) | status in-process [s] | `status` CLI wall [s] |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f = r.get("fresh")
        cell = lambda s: f"{s['prepare']:.1f} / {s['plan']:.2f} / {s['rest']:.1f}" if s else "-"  # noqa: E731
        nt, ny = r["noop"]["templates"], r["noop"]["yields"]
        st = r["status"]
        print(f"| {r['fraction']:g}x | {r['tracks']:,} | {r['models']:,} | {cell(f and f['templates'])} | "
              f"{cell(f and f['yields'])} | {nt['seconds']:.2f} + {ny['seconds']:.2f} ({nt['plan']:.2f} + {ny['plan']:.2f}) | "
              f"{st['templates'] + st['yields']:.2f} | {st['cli_wall']:.2f} |")
    fresh = [r for r in rows if "fresh" in r]
    print(f"\nExtrapolated to the 4x library ({target_models:,} models), least squares seconds = a + b x models "
          f"through {len(rows)} measured points ({len(fresh)} fresh):")
    series = {
        "fresh templates chunks (compute + write)": [(r["models"], r["fresh"]["templates"]["rest"]) for r in fresh],
        "fresh yields chunks (compute + write)": [(r["models"], r["fresh"]["yields"]["rest"]) for r in fresh],
        "fresh templates prepare (tracks, screen)": [(r["models"], r["fresh"]["templates"]["prepare"]) for r in fresh],
        "no-op templates + yields": [(r["models"], r["noop"]["templates"]["seconds"] + r["noop"]["yields"]["seconds"])
                                     for r in rows],
        "no-op plans (templates + yields)": [(r["models"], r["noop"]["templates"]["plan"] + r["noop"]["yields"]["plan"])
                                             for r in rows],
        "status, in process": [(r["models"], r["status"]["templates"] + r["status"]["yields"]) for r in rows],
        "status CLI wall": [(r["models"], r["status"]["cli_wall"]) for r in rows],
    }
    for label, pts in series.items():
        if len(pts) < 2:
            continue
        a, b, at = _fit([p[0] for p in pts], [p[1] for p in pts], target_models)
        print(f"- {label}: a = {a:.2f} s, b = {b * 1e3:.3f} ms/model -> {at:.1f} s at 4x")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fractions", type=float, nargs="*", default=[0.125, 0.25, 0.5], help="fresh libraries (none: only --noop-store)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scratch", type=Path, default=None, help="directory of the scratch stores (default: a temporary one)")
    p.add_argument("--noop-store", type=Path, help="also the no-op and status of this existing store ...")
    p.add_argument("--noop-fraction", type=float, default=1.0, help="... built with this library fraction")
    p.add_argument("--previous", type=Path, nargs="*", default=[], help="outputs of earlier runs: their JSON rows join the table")
    p.add_argument("--target-models", type=int, default=0, help="models of the 4x library (default: 4x the paper's)")
    args = p.parse_args(argv)
    from tasks.cluster import make_client

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-library-", dir=args.scratch))
    try:
        with make_client("local", args.workers) as client:
            for f in args.fractions:
                rows.append(measure(f, tmp, client))
                print(json.dumps(rows[-1]), flush=True)
            if args.noop_store:
                rows.append(measure_existing(args.noop_store, args.noop_fraction, client))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for log in args.previous:
        rows += [json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"fraction"')]
    rows.sort(key=lambda r: r["models"])
    _print(rows, args.target_models or 4 * 87_485)


if __name__ == "__main__":
    main()
