"""The ``stardiffuse`` command line (the user-facing contract of docs/design.md).

User errors (bad configuration, locked or missing store, unknown stage, cluster that
cannot start) print one message naming what is wrong, where, and how to fix it, and
exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
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
    from tasks.config import load_config

    return load_config(args.config, getattr(args, "preset", None))


def _cmd_run(args, console: Console) -> int:
    from tasks.runner import run
    from tasks.stages import resolve

    config = _load(args)
    stages = resolve(args.stages.split(",")) if args.stages else None
    kind = args.cluster or config.run.cluster
    workers = args.workers or config.run.workers
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    from tasks.config import check_paths

    check_paths(config, cluster=kind, jobqueue=args.jobqueue)
    t0 = time.perf_counter()
    jobqueue = args.jobqueue or config.run.jobqueue
    if args.sweep:
        from tasks.sweep import parse_sweep, seed_from, sweep_stores, with_value

        key, values = parse_sweep(args.sweep)
        configs = [with_value(config, key, v) for v in values]  # all validated before anything runs
        stores = sweep_stores(args.store, key, values)
        summaries = []
        with _client(kind, workers, jobqueue, config, console) as client:
            for i, (cfg, st) in enumerate(zip(configs, stores)):
                if i:
                    seed_from(stores[i - 1], st)
                console.print(f"[bold]{key} = {values[i]}[/bold] -> {st}")
                summaries.append(run(cfg, st, client=client, stages=stages, console=console))
                _print_summary(summaries[-1], console)
        console.print(f"sweep of {key} over {len(values)} values done in {time.perf_counter() - t0:.1f} s")
        if args.json:
            print(json.dumps({"sweep": key, "values": values, "stores": [s.as_json() for s in summaries]}))
        return 0
    with _client(kind, workers, jobqueue, config, console) as client:
        summary = run(config, args.store, client=client, stages=stages, console=console)
    total = time.perf_counter() - t0
    _print_summary(summary, console)
    console.print(f"store {summary.store} up to date in {total:.1f} s")
    if args.json:
        print(json.dumps(summary.as_json()))
    return 0


@contextlib.contextmanager
def _client(kind: str, workers, jobqueue, config, console: Console | None = None):
    """The run's client; a cluster starts only when a stage first has work (none for a no-op run).

    Once it is up, the dashboard address (as dask users expect) and the Slurm job ids are printed.
    """
    from tasks.cluster import LazyClient, make_client

    if kind == "sync":
        with make_client("sync") as client:
            yield client
        return
    r = config.run
    adapt = (r.min_jobs or 1, r.max_jobs) if r.max_jobs else None
    options = {"wait_timeout": r.wait_timeout, "adapt": adapt, "worker_lifetime": r.worker_lifetime,
               "lifetime_stagger": r.lifetime_stagger, "tls": r.tls, "dashboard_address": r.dashboard_address,
               "announce": console.print if console is not None else None}
    client = LazyClient(lambda: make_client(kind, workers, jobqueue, **options))
    try:
        yield client
    finally:
        client.close()


def _print_summary(summary, console: Console) -> None:
    for name, res in summary.stages.items():
        extra = f", {res.chunks_copied} reused after a layout change" if res.chunks_copied else ""
        extra += "".join(f", {k.replace('_', ' ')}: {v:,}" for k, v in res.work.items())
        console.print(f"  {name:<11} {res.chunks_computed}/{res.chunks_total} chunks computed{extra} in {res.seconds:.1f} s")
        for note in res.notes:
            console.print(f"      {note}")


def _cmd_status(args, console: Console) -> int:
    from tasks.config import check_paths
    from tasks.runner import status

    config = _load(args)
    check_paths(config)
    out = status(config, args.store, args.stages.split(",") if args.stages else None)
    if args.json:
        print(json.dumps({"store": args.store, "stages": out}))
    else:
        for name, st in out.items():
            if "chunks_total" in st:
                more = f" (more once {', '.join(st['upstream_stale'])} rerun)" if st.get("upstream_stale") else ""
                console.print(f"  {name:<11} {st['chunks_total']} chunks, {st['chunks_stale']} stale{more}")
                if st.get("reason"):
                    console.print(f"      {st['reason']}")
            else:
                console.print(f"  {name:<11} {st['status']}", markup=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stardiffuse`` console script; returns the exit status."""
    from cube.schema import SchemaError
    from cube.store import StoreError
    from tasks.config import ConfigError
    from tasks.stages import UnknownStageError

    try:
        from tasks.cluster import ClusterError
    except ImportError:  # pragma: no cover - cluster support is part of the package
        ClusterError = RuntimeError  # type: ignore[assignment,misc]

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])
    json_mode = getattr(args, "json", False)
    # With --json the last line of stdout is the JSON object; progress goes to stderr.
    console = Console(stderr=json_mode)
    from catalogs.stellar.mesa import MesaFormatError
    from tasks.kernels.population import LibraryError
    from tasks.stages.base import MissingInputError

    errors = (
        ConfigError,
        StoreError,
        UnknownStageError,
        ClusterError,
        UserError,
        SchemaError,
        MesaFormatError,
        MissingInputError,
        LibraryError,
    )
    try:
        if args.command == "run":
            return _cmd_run(args, console)
        if args.command == "status":
            return _cmd_status(args, console)
        if args.command == "figures":
            from tasks.figures import make_figures

            made = make_figures(args.store, args.out, console=console, band=args.band)
            n = sum(1 for v in made.values() if not isinstance(v, str))
            console.print(f"{n} of {len(made)} figures written to {args.out}")
            return 0
        if args.command == "export":
            from tasks.export import export

            export(args.store, args.out, console=console)
            return 0
        from tasks.report import report

        return report(args.store, json_mode=json_mode, console=console)
    except errors as e:
        print(f"stardiffuse: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("stardiffuse: interrupted; the next run redoes exactly the unfinished chunks", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
