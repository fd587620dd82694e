"""Dask cluster set-up for a pipeline run: synchronous, local processes, or Slurm.

``make_client`` is the single entry point used by the CLI (``--cluster`` and
``--workers``) and by notebooks::

    with make_client("local", workers=4) as client:
        tasks.run(config, store, client=client)

The Slurm path uses ``dask_jobqueue.SLURMCluster`` configured from a
``jobqueue.yaml`` (default: ``deployment/jobqueue.yaml`` of this repository);
see ``deployment/README.md`` for site notes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import yaml

__all__ = [
    "CLUSTER_KINDS",
    "DEFAULT_JOBQUEUE_CONFIG",
    "DEFAULT_WAIT_TIMEOUT",
    "ClusterError",
    "available_cpus",
    "load_jobqueue_config",
    "make_client",
    "LazyClient",
    "slurm_cluster",
]

#: Accepted values of ``kind`` (and of the CLI's ``--cluster``).
CLUSTER_KINDS: tuple[str, ...] = ("sync", "local", "slurm")



def _default_jobqueue_config() -> Path:
    """``deployment/jobqueue.yaml``: next to ``tasks/`` in a checkout, else the installed package."""
    source_tree = Path(__file__).resolve().parents[1] / "deployment" / "jobqueue.yaml"
    if source_tree.is_file():
        return source_tree
    spec = importlib.util.find_spec("deployment")
    if spec is not None and spec.origin is not None:
        installed = Path(spec.origin).parent / "jobqueue.yaml"
        if installed.is_file():
            return installed
    return source_tree  # missing: load_jobqueue_config reports it


#: jobqueue.yaml shipped with the project (``deployment/jobqueue.yaml``).
DEFAULT_JOBQUEUE_CONFIG: Path = _default_jobqueue_config()

#: Seconds to wait for Slurm worker jobs to connect (they may sit in the queue).
DEFAULT_WAIT_TIMEOUT: float = 600.0


class ClusterError(RuntimeError):
    """A cluster could not be configured or started; the message says what, where and how to fix."""


def available_cpus() -> int:
    """CPUs this process may use (honours Slurm/cgroup CPU sets, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def load_jobqueue_config(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check a dask-jobqueue YAML file.

    Parameters
    ----------
    path : str or Path, optional
        YAML file with a top-level ``jobqueue: {slurm: {...}}`` mapping, in the
        format of dask-jobqueue's own ``jobqueue.yaml``. Default
        :data:`DEFAULT_JOBQUEUE_CONFIG`.

    Returns
    -------
    dict
        The parsed mapping, ready for ``dask.config.set``.

    Raises
    ------
    ClusterError
        Missing file, invalid YAML, or no ``jobqueue.slurm`` section.
    """
    path = Path(path) if path is not None else DEFAULT_JOBQUEUE_CONFIG
    if not path.is_file():
        raise ClusterError(
            f"jobqueue configuration not found: {path}. Pass an existing file "
            f"(--jobqueue FILE, or run.jobqueue in the configuration) or copy {DEFAULT_JOBQUEUE_CONFIG.name} "
            "from the project's deployment/ folder and adapt it to your site."
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ClusterError(f"jobqueue configuration {path} is not valid YAML: {exc}") from exc
    slurm = (data or {}).get("jobqueue", {}).get("slurm") if isinstance(data, dict) else None
    if not isinstance(slurm, dict):
        raise ClusterError(
            f"jobqueue configuration {path} has no 'jobqueue: slurm:' section; "
            "see deployment/jobqueue.yaml for the expected layout."
        )
    for key in ("cores", "memory"):
        if slurm.get(key) in (None, ""):
            raise ClusterError(
                f"jobqueue configuration {path}: jobqueue.slurm.{key} must be set "
                "(resources of one Slurm job); see deployment/jobqueue.yaml."
            )
    return data


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys down to the leaves, so that ``dask.config.set`` merges instead of replacing.

    ``dask.config.set({"jobqueue": {...}})`` would replace the whole ``jobqueue``
    subtree (losing dask-jobqueue's defaults); dotted keys set single values.
    Values under ``jobqueue.<scheduler>.<key>`` (e.g. ``scheduler-options``) are
    whole values, not subtrees, and are kept as they are.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        is_job_option = name.startswith("jobqueue.") and name.count(".") == 2
        if isinstance(value, dict) and value and not is_job_option:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


@contextlib.contextmanager
def slurm_cluster(jobqueue_config: str | Path | None = None, worker_lifetime: str | None = None,
                  lifetime_stagger: str = "5m") -> Iterator[Any]:
    """A ``dask_jobqueue.SLURMCluster`` built from a jobqueue YAML, closed on exit.

    No job is submitted until the caller scales the cluster, so this is also the
    way to inspect ``cluster.job_script()`` without Slurm.

    Parameters
    ----------
    jobqueue_config : str or Path, optional
        See :func:`load_jobqueue_config`.
    worker_lifetime : str, optional
        Dask duration (``"3h50m"``) after which each worker retires gracefully (its tasks
        move to other workers); set it below the job walltime and use ``adapt`` so that
        retired jobs are replaced and a long run survives job ends.
    lifetime_stagger : str
        Random spread of the lifetimes, so that workers do not all retire at once.

    Yields
    ------
    dask_jobqueue.SLURMCluster
    """
    data = load_jobqueue_config(jobqueue_config)
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:  # pragma: no cover - dask-jobqueue is a dependency
        raise ClusterError("--cluster slurm needs dask-jobqueue: pip install dask-jobqueue") from exc
    # dask-jobqueue reads dask.config again each time it creates a job (on scale),
    # so the settings must stay in force for the cluster's whole life.
    with dask.config.set(_flatten(data)):
        kwargs = {}
        if worker_lifetime:
            extra = list(dask.config.get("jobqueue.slurm.worker-extra-args", None) or [])
            kwargs["worker_extra_args"] = extra + ["--lifetime", worker_lifetime, "--lifetime-stagger", lifetime_stagger]
        try:
            cluster = SLURMCluster(config_name="slurm", **kwargs)
        except Exception as exc:
            raise ClusterError(
                f"could not create a SLURMCluster from {jobqueue_config or DEFAULT_JOBQUEUE_CONFIG}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        try:
            yield cluster
        finally:
            cluster.close()


@contextlib.contextmanager
def make_client(
    kind: str = "local",
    workers: int | None = None,
    jobqueue_config: str | Path | None = None,
    *,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    adapt: tuple[int, int] | None = None,
    worker_lifetime: str | None = None,
    lifetime_stagger: str = "5m",
) -> Iterator[Any]:
    """Start a Dask cluster and client for the duration of a ``with`` block.

    Parameters
    ----------
    kind : {'sync', 'local', 'slurm'}
        ``'sync'``: no client, the synchronous scheduler is the dask default
        inside the block (tests, debugging). ``'local'``: a
        ``distributed.LocalCluster`` of single-threaded worker processes on this
        machine. ``'slurm'``: a ``dask_jobqueue.SLURMCluster`` from
        ``jobqueue_config``.
    workers : int, optional
        ``'local'``: number of worker processes (default: usable CPUs).
        ``'slurm'``: number of Slurm jobs (default 1); each job runs
        ``jobqueue.slurm.processes`` workers. Ignored for ``'sync'``.
    jobqueue_config : str or Path, optional
        ``'slurm'`` only: dask-jobqueue YAML (default ``deployment/jobqueue.yaml``).
    wait_timeout : float
        ``'slurm'`` only: seconds to wait for all workers to connect (jobs may
        queue) before giving up with :class:`ClusterError`.
    adapt : (int, int), optional
        ``'slurm'`` only: scale between this many Slurm jobs (``cluster.adapt``) instead
        of a fixed ``workers``; jobs that end (walltime, ``worker_lifetime``) are replaced.
    worker_lifetime, lifetime_stagger : str, optional
        ``'slurm'`` only: see :func:`slurm_cluster`.

    Yields
    ------
    distributed.Client or None
        ``None`` for ``'sync'``.

    Raises
    ------
    ClusterError
        Unknown kind, bad worker count, unusable jobqueue file, or Slurm workers
        that did not connect in time. Cluster and client are closed in every case.
    """
    if kind not in CLUSTER_KINDS:
        raise ClusterError(f"unknown cluster kind {kind!r}: use one of {', '.join(CLUSTER_KINDS)} (--cluster)")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ClusterError(f"workers must be a positive integer, got {workers!r} (--workers)")

    if kind == "sync":
        with dask.config.set(scheduler="synchronous"):
            yield None
        return

    from distributed import Client, LocalCluster

    if kind == "local":
        n = workers or available_cpus()
        # One thread per process: the kernels are numpy/scipy loops that hold the
        # GIL part of the time. The nannies already set OMP/MKL/OPENBLAS_NUM_THREADS=1
        # (distributed.nanny.pre-spawn-environ), so BLAS does not oversubscribe.
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                yield client
        return

    if adapt is not None and not (1 <= adapt[0] <= adapt[1]):
        raise ClusterError(f"adaptive Slurm jobs need 1 <= min_jobs <= max_jobs, got {adapt} (run.min_jobs, run.max_jobs)")
    jobs = adapt[0] if adapt else (workers or 1)
    with slurm_cluster(jobqueue_config, worker_lifetime, lifetime_stagger) as cluster:
        per_job = int(cluster._dummy_job.worker_processes)
        if adapt:
            cluster.adapt(minimum_jobs=adapt[0], maximum_jobs=adapt[1])
        else:
            cluster.scale(jobs=jobs)
        with Client(cluster) as client:
            try:
                client.wait_for_workers(jobs * per_job, timeout=wait_timeout)
            except (TimeoutError, OSError) as exc:
                raise ClusterError(
                    f"only {len(client.scheduler_info()['workers'])} of {jobs * per_job} Dask workers "
                    f"({jobs} Slurm job(s) x {per_job}) connected within {wait_timeout:g} s. "
                    "Check `squeue --me` (jobs still pending?) and the job logs "
                    "(jobqueue.slurm.log-directory); raise the timeout if the queue is slow, "
                    "or check that compute nodes can reach the scheduler "
                    "(jobqueue.slurm.interface, e.g. ib0)."
                ) from exc
            yield client


class LazyClient:
    """A ``distributed.Client`` started on first use, so a run with nothing to compute starts no cluster.

    Parameters
    ----------
    factory : callable
        Returns the context manager that yields the client (``lambda: make_client(...)``).
    """

    def __init__(self, factory) -> None:
        self._factory = factory
        self._stack = contextlib.ExitStack()
        self._client = None

    @property
    def started(self) -> bool:
        """Whether the cluster was needed (and started)."""
        return self._client is not None

    def __getattr__(self, name: str):
        if self._client is None:
            self._client = self._stack.enter_context(self._factory())
        return getattr(self._client, name)

    def close(self) -> None:
        """Close the client and its cluster, if they were started."""
        self._stack.close()
        self._client = None
