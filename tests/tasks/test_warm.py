"""Warm-up of a run's processes: every stage's hook, on real LocalCluster workers, in the background."""
import sys
import threading

import pytest

from tasks import warm
from tasks.stages import STAGES


def _warmed_state(on_workers: bool) -> dict:
    """Join this process's warm-up thread (the event), then report what it loaded."""
    for t in threading.enumerate():
        if t.name == "stardiffuse-warm-up":
            t.join()
    from catalogs.stellar.opacity import opacity_table

    return {
        "cosmic": "cosmic.evolve" in sys.modules,
        "envelope": "catalogs.stellar.envelope" in sys.modules,
        "opacity_table": opacity_table.cache_info().currsize,
        "luminosity": "tasks.kernels.luminosity" in sys.modules,
        "mapsum": "tasks.kernels.mapsum" in sys.modules,
    }


def test_workers_of_a_started_cluster_load_every_stage_in_the_background(tmp_path):
    import stardiffuse as sd

    with sd.cluster("local", workers=2) as client:
        assert client.started is False  # nothing is warmed before there is work
        client.wait_for_workers(2)  # starts the cluster: the plugin is registered on start
        states = client.run(_warmed_state, True)
    assert len(states) == 2
    for state in states.values():
        assert state == {"cosmic": True, "envelope": True, "opacity_table": 1, "luminosity": True, "mapsum": True}


def test_a_failing_hook_leaves_the_others_running(monkeypatch):
    import dataclasses

    calls = []

    def broken(on_workers):
        raise RuntimeError("cannot load")

    def fine(on_workers):
        calls.append(on_workers)

    names = list(STAGES)
    monkeypatch.setitem(STAGES, names[0], dataclasses.replace(STAGES[names[0]], warm=broken))
    monkeypatch.setitem(STAGES, names[-1], dataclasses.replace(STAGES[names[-1]], warm=fine))
    warm.warm(on_workers=False)
    assert calls == [False]


def test_only_the_run_s_stages_are_warmed(monkeypatch):
    import dataclasses

    calls = []
    for name in STAGES:
        monkeypatch.setitem(STAGES, name, dataclasses.replace(STAGES[name], warm=lambda w, n=name: calls.append(n)))
    warm.warm(True, ["sed", "xsec"])
    assert calls == ["xsec", "sed"]  # in run order
    calls.clear()
    warm.warm(True)
    assert calls == list(STAGES)


def test_a_plugin_that_cannot_be_registered_leaves_the_run_cold_not_failed(monkeypatch):
    """The client's own warm-up still runs, and :func:`warm.finish` waits for it."""
    import dataclasses

    class Refusing:  # a client whose scheduler refuses plugins
        def register_plugin(self, plugin):
            raise OSError("scheduler gone")

    ran = []
    name = next(iter(STAGES))
    monkeypatch.setitem(STAGES, name, dataclasses.replace(STAGES[name], warm=lambda w: ran.append(w)))
    warm.start(Refusing(), [name])
    warm.finish()
    assert ran == [False]


@pytest.mark.parametrize("on_workers", [True, False])
def test_hooks_write_nothing_but_the_per_machine_caches(on_workers, tmp_path, monkeypatch):
    """A hook loads modules and the tables of this process: nothing in the working directory."""
    monkeypatch.chdir(tmp_path)
    warm.warm(on_workers)
    assert list(tmp_path.iterdir()) == []
