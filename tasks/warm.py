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

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["warm", "warm_in_background", "WarmUp", "start"]

log = logging.getLogger(__name__)


def warm(on_workers: bool) -> None:
    """Run every stage's ``warm`` hook in run order in this process (see :class:`~tasks.stages.base.Stage`)."""
    from tasks.stages import STAGES

    for stage in STAGES.values():
        if stage.warm is None:
            continue
        try:
            stage.warm(on_workers)
        except Exception:  # noqa: BLE001 - a warm-up is an optimisation: its stage then loads on first use
            log.debug("warm-up of stage %s failed", stage.name, exc_info=True)


def warm_in_background(on_workers: bool) -> threading.Thread:
    """Start :func:`warm` in a daemon thread of this process and return the thread."""
    thread = threading.Thread(target=warm, args=(on_workers,), name="stardiffuse-warm-up", daemon=True)
    thread.start()
    return thread


class WarmUp(WorkerPlugin):
    """Worker plugin that warms each worker in the background as it starts (see :func:`start`)."""

    name = "stardiffuse-warm-up"

    def setup(self, worker) -> None:
        warm_in_background(on_workers=True)


def start(client) -> None:
    """Warm the workers of ``client`` (those present and those that join later) and this client."""
    client.register_plugin(WarmUp())
    warm_in_background(on_workers=False)
