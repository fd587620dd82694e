"""Warm-up of the processes of a run: each stage's imports and compiled kernels, in the background.

A worker's first chunk of a stage pays what the process has not loaded yet: COSMIC's import
for the tracks, numba's own set-up and the stage's kernels from numba's cache, the opacity
table. On the quick preset that was ~40% of some stages' time, and it sat on the critical
path: one worker loading while the other waited for the stage to end. As a cluster starts,
:func:`start` runs every stage's ``warm`` hook (:class:`~tasks.stages.base.Stage`), in run
order, in a background thread of each worker (also of workers that join later) and of the
client, so that the loading overlaps the time a process waits for the client or for the
other workers. A hook computes nothing that is kept, and one that fails only leaves its
stage to load on first use.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["warm", "warm_in_background", "WarmUp", "start", "finish"]

log = logging.getLogger(__name__)


def warm(on_workers: bool, stages: Iterable[str] | None = None) -> None:
    """Run the ``warm`` hook of ``stages`` (default all) in run order in this process (see :class:`~tasks.stages.base.Stage`)."""
    from tasks.stages import ORDER, STAGES

    wanted = set(ORDER if stages is None else stages)
    for name in ORDER:
        hook = STAGES[name].warm if name in wanted else None
        if hook is None:
            continue
        try:
            hook(on_workers)
        except Exception:  # noqa: BLE001 - a warm-up is an optimisation: its stage then loads on first use
            log.debug("warm-up of stage %s failed", name, exc_info=True)


def warm_in_background(on_workers: bool, stages: Iterable[str] | None = None) -> threading.Thread:
    """Start :func:`warm` in a daemon thread of this process and return the thread."""
    args = (on_workers, None if stages is None else tuple(stages))
    thread = threading.Thread(target=warm, args=args, name="stardiffuse-warm-up", daemon=True)
    thread.start()
    return thread


class WarmUp(WorkerPlugin):
    """Worker plugin that warms each worker in the background as it starts (see :func:`start`).

    Parameters
    ----------
    stages : tuple of str, optional
        The stages of the run (default all).
    """

    name = "stardiffuse-warm-up"

    def __init__(self, stages: tuple[str, ...] | None = None) -> None:
        self.stages = stages

    def setup(self, worker) -> None:
        warm_in_background(True, self.stages)


_CLIENT_THREADS: list[threading.Thread] = []


def start(client, stages: Iterable[str] | None = None) -> None:
    """Warm the workers of ``client`` (those present and those that join later) and this process.

    A failure to register the plugin is logged, not raised: the run goes on cold.
    """
    stages = None if stages is None else tuple(stages)
    try:
        client.register_plugin(WarmUp(stages))
    except Exception:  # noqa: BLE001 - an optimisation must not stop the run
        log.warning("could not start the workers' warm-up; they load each stage on first use", exc_info=True)
    _CLIENT_THREADS.append(warm_in_background(False, stages))


def finish() -> None:
    """Wait for this process's warm-up threads, so that it never exits in the middle of an import."""
    while _CLIENT_THREADS:
        _CLIENT_THREADS.pop().join()
