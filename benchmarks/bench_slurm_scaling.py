"""Strong scaling of `templates` and `yields` on Slurm: the same run with 1, 2, ... one-core worker jobs.

Computes the upstream `xsec` cube once in-process, then for each job count runs
``stardiffuse run --cluster slurm --workers N --stages templates,yields --json`` on a copy of
that store, with the project's deployment/jobqueue.yaml adapted to one core, one process and
``--memory`` per job in ``--partition``. Prints each stage's seconds (from the run's JSON
summary; the first stage with work also waits for the worker jobs to start, which the run
reports as "running after X s"), the wall time and the speedup over one job.

    python benchmarks/bench_slurm_scaling.py --preset quick --jobs 1,2

Needs a Slurm with as many free CPUs as the largest job count (deployment/slurm/local-cluster.sh
start gives one on this machine). The numbers go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.cluster import DEFAULT_JOBQUEUE_CONFIG  # noqa: E402


def _default_partition() -> str:
    names = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True).stdout.split()
    return next((n.rstrip("*") for n in names if n.endswith("*")), names[0])


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasks.cli", *args], capture_output=True, text=True, env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--preset", default="quick", choices=["quick", "paper"])
    src.add_argument("--config", help="run configuration YAML instead of a preset")
    ap.add_argument("--jobs", default="1,2", help="comma-separated job counts (default 1,2)")
    ap.add_argument("--stages", default="templates,yields")
    ap.add_argument("--partition", default=None, help="default: sinfo's default partition")
    ap.add_argument("--memory", default="3GiB", help="memory per one-core job")
    ap.add_argument("--interface", default="lo", help="network interface (lo: everything on this machine)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per job count (alternating), best kept")
    args = ap.parse_args()
    jobs = [int(n) for n in args.jobs.split(",")]
    source = ["--config", args.config] if args.config else ["--preset", args.preset]
    env = dict(os.environ)
    # the CLI and the worker jobs (sbatch exports this environment) import this checkout
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])

    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        tmp = Path(tmp)
        data = yaml.safe_load(DEFAULT_JOBQUEUE_CONFIG.read_text())
        data["jobqueue"]["slurm"].update(
            name="sd-bench", queue=args.partition or _default_partition(), cores=1, processes=1,
            memory=args.memory, walltime="02:00:00", interface=args.interface,
            **{"local-directory": str(tmp / "scratch"), "log-directory": str(tmp / "logs")},
        )
        jq = tmp / "jobqueue.yaml"
        jq.write_text(yaml.safe_dump(data))
        base = tmp / "base.zarr"
        r = _cli("run", *source, "--store", str(base), "--cluster", "sync", "--stages", "xsec", env=env)
        if r.returncode:
            sys.exit(r.stderr)
        best: dict[int, tuple] = {}
        # Alternate the job counts, so that load from other work on the machine hits all alike;
        # the load average is printed with each run because it bounds what a second job can gain.
        for rep in range(args.repeat):
            for n in jobs:
                store = tmp / f"jobs{n}.zarr"
                load = os.getloadavg()[0]
                shutil.copytree(base, store)
                t0 = time.perf_counter()
                r = _cli("run", *source, "--store", str(store), "--cluster", "slurm", "--jobqueue", str(jq),
                         "--workers", str(n), "--stages", args.stages, "--json", env=env)
                wall = time.perf_counter() - t0
                if r.returncode:
                    sys.exit(r.stderr)
                summary = json.loads(r.stdout.strip().splitlines()[-1])["stages"]
                started = re.search(r"running after ([0-9.]+) s", r.stderr)
                row = (n, summary, wall, float(started.group(1)) if started else float("nan"), load)
                print(f"run {rep + 1}: {n} job(s) {wall:.1f} s wall, load average before {load:.2f} "
                      f"on {os.cpu_count()} CPUs", file=sys.stderr)
                if n not in best or wall < best[n][2]:
                    best[n] = row
                shutil.rmtree(store)
        rows = [best[n] for n in jobs]

    stages = [s for s in rows[0][1] if rows[0][1][s].get("chunks_computed")]
    print(f"{' | '.join(['jobs'] + [f'{s} s (chunks)' for s in stages] + ['jobs up after s', 'wall s', 'speedup', 'load before'])}")
    for n, summary, wall, started, load in rows:
        cells = [str(n)] + [f"{summary[s]['seconds']:.1f} ({summary[s]['chunks_computed']})" for s in stages]
        cells += [f"{started:.1f}", f"{wall:.1f}", f"{rows[0][2] / wall:.2f}", f"{load:.2f}"]
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
