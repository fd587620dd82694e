"""The ``stardiffuse`` command line (the user-facing contract of docs/design.md).

User errors (bad configuration, locked or missing store, unknown stage, cluster that
cannot start) print one message naming what is wrong, where, and how to fix it, and
exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence

from rich.console import Console

__all__ = ["main", "build_parser"]

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``stardiffuse`` with its sub-commands."""
    p = argparse.ArgumentParser(
        prog="stardiffuse",
        description="Diffuse TeV-PeV gamma rays and neutrinos from cosmic rays hitting the Milky Way's stars.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def cfg_opts(sp, presets: bool = True):
        sp.add_argument("--config", metavar="FILE", help="YAML configuration (may start with `preset: quick`)")
        if presets:
            sp.add_argument("--preset", choices=["quick", "paper"], help="shipped preset (default quick)")
        sp.add_argument("--store", default="stardiffuse.zarr", metavar="PATH", help="Zarr store (default ./stardiffuse.zarr)")

    r = sub.add_parser("run", help="bring the cubes up to date (only stale chunks are computed)")
    cfg_opts(r)
    r.add_argument("--cluster", choices=["sync", "local", "slurm"], help="where chunks run (default from config: local)")
    r.add_argument("--workers", type=int, metavar="N", help="worker processes (local) or jobs (slurm)")
    r.add_argument("--stages", metavar="a,b,...", help="stages to run, with their upstream stages (default all)")
    r.add_argument("--jobqueue", metavar="FILE", help="dask-jobqueue YAML for --cluster slurm (default deployment/jobqueue.yaml)")
    r.add_argument("--json", action="store_true", help="end the output with one JSON summary object")
    r.add_argument("--sweep", metavar="KEY=V1,V2,...", help="one store per value of a configuration key (see README)")

    s = sub.add_parser("status", help="per stage: chunks total and stale")
    cfg_opts(s)
    s.add_argument("--stages", metavar="a,b,...", help="stages to report, with their upstream stages (default all)")
    s.add_argument("--json", action="store_true")

    rep = sub.add_parser("report", help="headline numbers vs the paper's claims")
    rep.add_argument("--store", default="stardiffuse.zarr", metavar="PATH")
    rep.add_argument("--json", action="store_true")

    f = sub.add_parser("figures", help="the paper's figures as PNG")
    f.add_argument("--store", default="stardiffuse.zarr", metavar="PATH")
    f.add_argument("--out", default="figures", metavar="DIR")
    f.add_argument("--band", nargs="+", default=[], metavar="STORE", help="stores of a --sweep: hatch the band they span")

    e = sub.add_parser("export", help="HEALPix FITS maps, SED tables")
    e.add_argument("--store", default="stardiffuse.zarr", metavar="PATH")
    e.add_argument("--out", default="export", metavar="DIR")
    return p


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def _load(args):
    import stardiffuse as sd

    return sd.load_config(args.config, getattr(args, "preset", None))


def _cmd_run(args, console: Console) -> int:
    import stardiffuse as sd

    config = _load(args)
    stages = sd.resolve_stages(args.stages) if args.stages else None
    kind = args.cluster or config.run.cluster
    workers = args.workers or config.run.workers
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    t0 = time.perf_counter()
    sweep = sd.parse_sweep(args.sweep) if args.sweep else None
    # the cluster checks the paths the configuration names before anything runs; it starts only
    # when a stage first has chunks to compute
    with sd.cluster(kind, workers, config=config, jobqueue=args.jobqueue, console=console) as client:
        if sweep:
            key, values = sweep
            summaries = sd.sweep(config, args.store, key, values, client=client, stages=stages, console=console)
        else:
            summary = sd.run(config, args.store, client=client, stages=stages, console=console)
    if sweep:
        console.print(f"sweep of {key} over {len(values)} values done in {time.perf_counter() - t0:.1f} s")
        if args.json:
            print(json.dumps({"sweep": key, "values": values, "stores": [s.as_json() for s in summaries]}))
        return 0
    console.print(f"store {summary.store} up to date in {time.perf_counter() - t0:.1f} s")
    if args.json:
        print(json.dumps(summary.as_json()))
    return 0


def _cmd_status(args, console: Console) -> int:
    import stardiffuse as sd
    from stardiffuse.api import _status_record

    table = sd.status(_load(args), args.store, args.stages)
    if args.json:
        print(json.dumps({"store": args.store, "stages": {row.stage: _status_record(row) for row in table.itertuples()}}))
        return 0
    for row in table.itertuples():
        if row.status in ("waiting for upstream", "cannot plan"):
            console.print(f"  {row.stage:<11} {row.reason}", markup=False)
            continue
        more = f" (more once {', '.join(row.upstream_stale)} rerun)" if row.upstream_stale else ""
        console.print(f"  {row.stage:<11} {row.chunks_total} chunks, {row.chunks_stale} stale{more}")
        if row.reason:
            console.print(f"      {row.reason}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stardiffuse`` console script; returns the exit status."""
    import stardiffuse as sd

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])
    json_mode = getattr(args, "json", False)
    # With --json the last line of stdout is the JSON object; progress goes to stderr.
    console = Console(stderr=json_mode)
    errors = (*sd.USER_ERRORS, UserError)
    try:
        if args.command == "run":
            return _cmd_run(args, console)
        if args.command == "status":
            return _cmd_status(args, console)
        if args.command == "figures":
            sd.figures(args.store, args.out, band=args.band, console=console)
            return 0
        if args.command == "export":
            sd.export(args.store, args.out, console=console)
            return 0
        result = sd.report(args.store, console=None if json_mode else console)
        if json_mode:
            print(json.dumps(result))
        return 0
    except errors as e:
        print(f"stardiffuse: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("stardiffuse: interrupted; the next run redoes exactly the unfinished chunks", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
