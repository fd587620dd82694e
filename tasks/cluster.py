"""Dask cluster set-up for a pipeline run: synchronous, local processes, or Slurm.

``make_client`` is the single entry point behind ``stardiffuse.cluster`` (the CLI's
``--cluster`` and ``--workers``)::

    with sd.cluster("local", workers=4) as client:
        sd.run(config, store, client=client)

The Slurm path uses ``dask_jobqueue.SLURMCluster`` configured from a
``jobqueue.yaml`` (default: ``deployment/jobqueue.yaml`` of this repository);
see ``deployment/README.md`` for site notes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask
import yaml

__all__ = [
    "CLUSTER_KINDS",
    "DEFAULT_JOBQUEUE_CONFIG",
    "DEFAULT_WAIT_TIMEOUT",
    "DEFAULT_TLS_DIRECTORY",
    "ClusterError",
    "available_cpus",
    "dashboard_message",
    "slurm_security",
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


#: Where temporary TLS credentials of Slurm runs are written (``shared-temp-directory`` in
#: jobqueue.yaml overrides it): the home directory is visible on every node of most clusters,
#: and a 0700 directory there is readable by its owner alone.
DEFAULT_TLS_DIRECTORY: Path = Path("~/.stardiffuse/tls")


def _private_directory(path: str | Path) -> Path:
    """``path`` (``~`` and ``$VARS`` expanded), created with mode 0700, tightened if it is ours and looser.

    Raises
    ------
    ClusterError
        The directory cannot be created, or is owned by someone else.
    """
    p = Path(os.path.expandvars(os.path.expanduser(str(path))))
    try:
        p.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = p.stat()
        if st.st_uid != os.getuid():
            raise ClusterError(
                f"TLS credential directory {p} belongs to another user (uid {st.st_uid}); set "
                "jobqueue.slurm.shared-temp-directory to a directory of your own"
            )
        if st.st_mode & 0o077:
            p.chmod(0o700)  # others must not read the private key written there
    except OSError as exc:
        raise ClusterError(
            f"cannot create the TLS credential directory {p} ({exc.strerror}); set "
            "jobqueue.slurm.shared-temp-directory to a writable directory on a file system the "
            "compute nodes see (or run.tls: false, see deployment/README.md)"
        ) from None
    return p


def slurm_security(tls: bool = True) -> Any:
    """The ``distributed.Security`` of a Slurm run: who may talk to its scheduler and workers.

    Parameters
    ----------
    tls : bool
        ``False``: ``None`` (plain TCP; anyone who can reach the ports can submit work).

    Returns
    -------
    distributed.Security or None
        The site's certificates when dask's configuration names them
        (``distributed.comm.tls.ca-file``), otherwise a fresh self-signed certificate
        (``Security.temporary``) that only this run's scheduler, workers and client hold.
    """
    if not tls:
        return None
    from distributed.security import Security

    if dask.config.get("distributed.comm.tls.ca-file", None):
        return Security(require_encryption=True)
    try:
        return Security.temporary()
    except ImportError as exc:  # pragma: no cover - cryptography is a dependency
        raise ClusterError("TLS for Slurm runs needs the cryptography package: pip install cryptography") from exc


def _sbatch_reason(message: str) -> str:
    """Slurm's own words from dask-jobqueue's ``RuntimeError`` of a failed ``sbatch``."""
    stderr = message.split("stderr:", 1)[-1]
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return "; ".join(errors or lines) or message.strip()


def _recording_job_cls() -> type:
    """A ``SLURMJob`` class of its own for one cluster, recording every refused ``sbatch``.

    dask-jobqueue only logs a refused submission (a traceback each time the cluster
    corrects its state), so without this a request Slurm can never satisfy waits out
    ``wait_timeout``. The class attribute ``refusals`` holds Slurm's messages, for
    :func:`make_client` to stop at once with one message. The refused job is kept as
    started without a job id (``scancel`` skips it): raising would only repeat the
    traceback, and the cluster keeps a failed job in its plan either way.
    """
    from dask_jobqueue.slurm import SLURMJob
    from distributed.core import Status

    class StardiffuseSLURMJob(SLURMJob):
        refusals: list[str] = []

        async def start(self):
            try:
                await super().start()
            except RuntimeError as exc:
                type(self).refusals.append(_sbatch_reason(str(exc)))
                self.job_id = None
                self.status = Status.running  # what SpecCluster asserts after start()

    return type("StardiffuseSLURMJob", (StardiffuseSLURMJob,), {"refusals": []})


def _close_credentials(cluster: Any) -> None:
    """Delete the credential files dask-jobqueue wrote for the workers (it keeps them open until GC)."""
    for key in ("ca_file", "cert", "key"):
        f = getattr(cluster, f"_job_{key}", None)
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()


@contextlib.contextmanager
def slurm_cluster(jobqueue_config: str | Path | None = None, worker_lifetime: str | None = None,
                  lifetime_stagger: str = "5m", *, tls: bool = True,
                  dashboard_address: str | None = None) -> Iterator[Any]:
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
    tls : bool
        Scheduler, workers and client talk TLS with mutual certificates (:func:`slurm_security`),
        so that nobody else on the cluster can connect to the workers and run code as you.
        The workers read their temporary credentials from ``shared-temp-directory`` of the
        YAML (default :data:`DEFAULT_TLS_DIRECTORY`, created 0700; files 0600, deleted on exit).
    dashboard_address : str, optional
        Where the scheduler serves the dashboard (``":8787"``, ``":0"`` for any free port);
        ``None``: none.

    Yields
    ------
    dask_jobqueue.SLURMCluster
        Its ``job_cls.refusals`` lists Slurm's messages for refused submissions.
    """
    data = load_jobqueue_config(jobqueue_config)
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:  # pragma: no cover - dask-jobqueue is a dependency
        raise ClusterError("--cluster slurm needs dask-jobqueue: pip install dask-jobqueue") from exc
    # dask-jobqueue reads dask.config again each time it creates a job (on scale),
    # so the settings must stay in force for the cluster's whole life.
    with dask.config.set(_flatten(data)):
        kwargs: dict[str, Any] = {"job_cls": _recording_job_cls()}
        if worker_lifetime:
            extra = list(dask.config.get("jobqueue.slurm.worker-extra-args", None) or [])
            kwargs["worker_extra_args"] = extra + ["--lifetime", worker_lifetime, "--lifetime-stagger", lifetime_stagger]
        options = dict(dask.config.get("jobqueue.slurm.scheduler-options", None) or {})
        options.update(_dashboard_options(dashboard_address))
        kwargs["scheduler_options"] = options
        security = slurm_security(tls)
        if security is not None:
            kwargs["security"] = security
            shared = dask.config.get("jobqueue.slurm.shared-temp-directory", None) or DEFAULT_TLS_DIRECTORY
            kwargs["shared_temp_directory"] = str(_private_directory(shared))
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
            try:
                cluster.close()
            finally:
                _close_credentials(cluster)


def _squeue_states(job_ids: list[str]) -> str:
    """``squeue``'s state and reason of ``job_ids`` (``"123 PENDING (Resources)"``), or why there are none."""
    if not job_ids:
        return "no job was submitted"
    try:
        out = subprocess.run(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %T (%r)"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"squeue did not answer ({exc})"
    text = "; ".join(ln.strip() for ln in out.stdout.splitlines() if ln.strip())
    return text or f"jobs {', '.join(job_ids)} are no longer in squeue (ended: see their logs)"


def _wait_for_slurm_workers(client: Any, cluster: Any, jobs: int, per_job: int, wait_timeout: float) -> None:
    """Return once ``jobs x per_job`` workers are connected; stop at once if Slurm refuses a job.

    Raises
    ------
    ClusterError
        ``sbatch`` refused a job (Slurm's reason, at once), or the workers did not connect
        within ``wait_timeout`` seconds (with ``squeue``'s state and reason of each job).
    """
    wanted = jobs * per_job
    refusals = cluster.job_cls.refusals
    deadline = time.monotonic() + wait_timeout
    while True:
        if refusals:
            raise ClusterError(
                f"Slurm refused the worker job: {refusals[0]}. The request comes from the jobqueue "
                f"configuration (jobqueue.slurm: cores, memory, processes, queue, walltime, "
                "job-extra-directives): make it fit a node of the partition (`sinfo -o '%P %c %m %l'` "
                "lists CPUs, memory in MB and time limit). Nothing stored was changed."
            )
        n = len(client.nthreads())
        if n >= wanted:
            return
        if time.monotonic() > deadline:
            ids = [str(j.job_id) for j in list(cluster.workers.values()) if getattr(j, "job_id", None)]
            raise ClusterError(
                f"only {n} of {wanted} Dask workers ({jobs} Slurm job(s) x {per_job}) connected within "
                f"{wait_timeout:g} s; squeue says: {_squeue_states(ids)}. Check the job logs "
                "(jobqueue.slurm.log-directory); raise run.wait_timeout if the queue is slow, "
                "or check that compute nodes can reach the scheduler (jobqueue.slurm.interface, e.g. ib0)."
            )
        time.sleep(0.2)  # polling interval only; the outcome is decided by the events above


def _dashboard_options(dashboard_address: str | None) -> dict[str, Any]:
    """Scheduler options for a dashboard at ``dashboard_address``, or none.

    The scheduler always serves HTTP (health and metrics routes) and, given no address,
    takes the fixed port 8787; "off" therefore means no dashboard on a free port
    (``":0"``), so that runs and tests never compete for a port.
    """
    if dashboard_address is None:
        return {"dashboard": False, "dashboard_address": ":0"}
    return {"dashboard": True, "dashboard_address": dashboard_address}


def dashboard_message(client: Any, dashboard_address: str | None) -> str | None:
    """What to tell the user about the dashboard of ``client``'s cluster, or ``None`` when it is off."""
    if dashboard_address is None:
        return None
    if importlib.util.find_spec("bokeh") is None:
        return "Dask dashboard: needs bokeh (pip install 'bokeh>=3.1'); running without it"
    link = client.dashboard_link
    return f"Dask dashboard: {link}" if link else "Dask dashboard: not started (see the scheduler log)"


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
    tls: bool = True,
    dashboard_address: str | None = None,
    announce: Callable[[str], None] | None = None,
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
        queue) before giving up with :class:`ClusterError`. A job Slurm refuses
        outright stops the wait at once.
    adapt : (int, int), optional
        ``'slurm'`` only: scale between this many Slurm jobs (``cluster.adapt``) instead
        of a fixed ``workers``; jobs that end (walltime, ``worker_lifetime``, ``scancel``)
        are replaced.
    worker_lifetime, lifetime_stagger : str, optional
        ``'slurm'`` only: see :func:`slurm_cluster`.
    tls : bool
        ``'slurm'`` only: TLS with this run's own certificate (see :func:`slurm_cluster`).
        A LocalCluster listens on loopback only and is not affected.
    dashboard_address : str, optional
        ``'local'``/``'slurm'``: the dashboard's address (``":8787"``; ``":0"``: a free
        port); ``None``: no dashboard.
    announce : callable, optional
        Called with one line per fact the user should see once the cluster is up
        (the dashboard address, the Slurm job ids).

    Yields
    ------
    distributed.Client or None
        ``None`` for ``'sync'``.

    Raises
    ------
    ClusterError
        Unknown kind, bad worker count, unusable jobqueue file, a worker job Slurm
        refuses, or Slurm workers that did not connect in time. Cluster and client are
        closed in every case.
    """
    if kind not in CLUSTER_KINDS:
        raise ClusterError(f"unknown cluster kind {kind!r}: use one of {', '.join(CLUSTER_KINDS)} (--cluster)")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ClusterError(f"workers must be a positive integer, got {workers!r} (--workers)")
    say = announce or (lambda line: None)

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
        dash = _dashboard_options(dashboard_address)
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                          dashboard_address=dash["dashboard_address"],
                          scheduler_kwargs={"dashboard": dash["dashboard"]}) as cluster:
            with Client(cluster) as client:
                msg = dashboard_message(client, dashboard_address)
                if msg:
                    say(msg)
                yield client
        return

    if adapt is not None and not (1 <= adapt[0] <= adapt[1]):
        raise ClusterError(f"adaptive Slurm jobs need 1 <= min_jobs <= max_jobs, got {adapt} (run.min_jobs, run.max_jobs)")
    jobs = adapt[0] if adapt else (workers or 1)
    t0 = time.monotonic()
    with slurm_cluster(jobqueue_config, worker_lifetime, lifetime_stagger, tls=tls,
                       dashboard_address=dashboard_address) as cluster:
        per_job = int(cluster._dummy_job.worker_processes)
        if adapt:
            cluster.adapt(minimum_jobs=adapt[0], maximum_jobs=adapt[1])
        else:
            cluster.scale(jobs=jobs)
        with Client(cluster) as client:
            msg = dashboard_message(client, dashboard_address)
            if msg:
                say(msg)
            _wait_for_slurm_workers(client, cluster, jobs, per_job, wait_timeout)
            ids = sorted(str(j.job_id) for j in list(cluster.workers.values()) if getattr(j, "job_id", None))
            say(f"Slurm worker job(s) {', '.join(ids)} running after {time.monotonic() - t0:.1f} s "
                f"({'TLS' if tls else 'plain TCP, no TLS'}); scheduler at {cluster.scheduler_address}")
            yield client


class LazyClient:
    """A ``distributed.Client`` started on first use, so a run with nothing to compute starts no cluster.

    Parameters
    ----------
    factory : callable
        Returns the context manager that yields the client (``lambda: make_client(...)``).
    on_start : callable, optional
        ``on_start(client, stages)``, called once the client has started (e.g.
        :func:`tasks.warm.start`), with :attr:`stages`.

    Attributes
    ----------
    stages : tuple of str or None
        The stages the run using this client computes (set by :func:`tasks.runner.run`);
        ``None``: unknown.
    """

    def __init__(self, factory, on_start=None) -> None:
        self._factory = factory
        self._on_start = on_start
        self._stack = contextlib.ExitStack()
        self._client = None
        self.stages: tuple[str, ...] | None = None

    @property
    def started(self) -> bool:
        """Whether the cluster was needed (and started)."""
        return self._client is not None

    def __getattr__(self, name: str):
        if self._client is None:
            self._client = self._stack.enter_context(self._factory())
            if self._on_start is not None:
                self._on_start(self._client, self.stages)
        return getattr(self._client, name)

    def close(self) -> None:
        """Close the client and its cluster, if they were started."""
        self._stack.close()
        self._client = None
