"""The orchestration contract on a real Zarr store and the real xsec stage."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
import yaml

import cube
from cube import store as cs
from tasks.cluster import make_client
from tasks.config import Config
from tasks.runner import run, stage_status
from tasks.stages import STAGES


def _with_xsec(config: Config, **xsec) -> Config:
    d = config.model_dump()
    d["xsec"] = {**d["xsec"], **xsec}
    return Config.model_validate(d)


def _load(store, group="xsec") -> xr.Dataset:
    return cube.open(store, group).load()


def test_second_run_computes_nothing(xsec_config, store):
    first = run(xsec_config, store, stages=["xsec"]).stages["xsec"]
    assert first.chunks_computed == first.chunks_total > 1
    second = run(xsec_config, store, stages=["xsec"]).stages["xsec"]
    assert (second.chunks_total, second.chunks_computed) == (first.chunks_total, 0)
    assert stage_status(STAGES["xsec"], xsec_config, store) == {"chunks_total": first.chunks_total, "chunks_stale": 0}
    cube.validate(cube.open(store, "xsec"), "xsec")


def test_extending_E_p_recomputes_only_new_rows_and_equals_fresh(xsec_config, store, tmp_path):
    run(xsec_config, store, stages=["xsec"])
    wider = _with_xsec(xsec_config, E_p={"min": 0.1, "max": 1.0e5, "per_decade": 4})
    res = run(wider, store, stages=["xsec"]).stages["xsec"]
    # 0.1..1e3 TeV at 4/decade = 17 rows (chunks of 3: 5 full + 1 partial); the 8 new rows
    # 1e3..1e5 plus the old partial chunk's neighbours fill the last chunks.
    assert res.chunks_total == 9
    assert 0 < res.chunks_computed < res.chunks_total
    assert res.chunks_copied == res.chunks_total - res.chunks_computed
    fresh = tmp_path / "fresh.zarr"
    run(wider, fresh, stages=["xsec"])
    xr.testing.assert_identical(_load(store), _load(fresh))


def test_changing_energy_grid_recomputes_everything(xsec_config, store, tmp_path):
    run(xsec_config, store, stages=["xsec"])
    finer = _with_xsec(xsec_config, energy={"min": 0.1, "max": 100.0, "per_decade": 6})
    res = run(finer, store, stages=["xsec"]).stages["xsec"]
    assert res.chunks_computed == res.chunks_total
    fresh = tmp_path / "fresh.zarr"
    run(finer, fresh, stages=["xsec"])
    xr.testing.assert_identical(_load(store), _load(fresh))


def test_stale_chunk_in_place_is_recomputed(xsec_config, store):
    run(xsec_config, store, stages=["xsec"])
    led = cs.read_ledger(store, "xsec")
    victim = sorted(led)[1]
    (store / "_ledger" / "xsec" / f"{victim}.json").unlink()
    before = _load(store)
    res = run(xsec_config, store, stages=["xsec"]).stages["xsec"]
    assert res.chunks_computed == 1
    xr.testing.assert_identical(before, _load(store))


def test_local_cluster_with_two_workers_equals_sync(xsec_config, store, tmp_path):
    with make_client("sync") as client:
        run(xsec_config, store, client=client, stages=["xsec"])
    other = tmp_path / "dist.zarr"
    with make_client("local", 2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        res = run(xsec_config, other, client=client, stages=["xsec"]).stages["xsec"]
    assert res.chunks_computed == res.chunks_total
    a, b = _load(store), _load(other)
    xr.testing.assert_identical(a, b)
    assert np.array_equal(a.dsigma_dE.values, b.dsigma_dE.values)


def test_physical_content_of_xsec_cube(xsec_config, store):
    run(xsec_config, store, stages=["xsec"])
    ds = _load(store)
    s = ds.sigma_inel.interp(E_p=[1.0, 100.0], method="cubic").values
    np.testing.assert_allclose(s, [34.9, 47.9], rtol=0.01)
    assert float(ds.dsigma_dE.min()) >= 0
    # no secondary carries more energy than its primary
    high = ds.dsigma_dE.where(ds.energy > ds.E_p * 1.0001)
    assert float(high.max(skipna=True).fillna(0)) == 0.0


def _cli(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "tasks.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _kill_when_recorded(p, ledger, n: int) -> int:
    """SIGKILL the run ``p`` once ``n`` chunks are recorded in ``ledger``; returns how many were.

    The trigger is the ledger; the deadline only fails a run that is stuck (it never kills one).
    """
    deadline = time.monotonic() + 600
    while not (ledger.is_dir() and len(list(ledger.glob("*.json"))) >= n):
        if p.poll() is not None:
            pytest.fail(f"run ended before it could be killed: {p.communicate()}")
        if time.monotonic() > deadline:
            p.kill()
            pytest.fail(f"stuck: fewer than {n} chunks recorded in {ledger} after 600 s")
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    return len(list(ledger.glob("*.json")))


def test_sigkill_mid_stage_then_rerun_equals_uninterrupted(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "preset": "quick",
                "xsec": {
                    "E_p": {"min": 0.1, "max": 1.0e5, "per_decade": 40},
                    "energy": {"min": 0.1, "max": 1.0e4, "per_decade": 20},
                    "chunk": 1,
                },
            }
        )
    )
    killed = tmp_path / "killed.zarr"
    p = _cli("run", "--config", str(cfg), "--store", str(killed), "--cluster", "sync", "--stages", "xsec")
    n_done = _kill_when_recorded(p, killed / "_ledger" / cs.staging_name("xsec"), 20)
    assert 20 <= n_done < 241, n_done

    again = _cli("run", "--config", str(cfg), "--store", str(killed), "--cluster", "sync", "--stages", "xsec", "--json")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])["stages"]["xsec"]
    assert summary["chunks_total"] == 241
    assert summary["chunks_computed"] <= 241 - n_done + 1

    clean = tmp_path / "clean.zarr"
    ok = _cli("run", "--config", str(cfg), "--store", str(clean), "--cluster", "sync", "--stages", "xsec")
    assert ok.wait(300) == 0
    xr.testing.assert_identical(_load(killed), _load(clean))


def test_ledger_of_an_older_fingerprint_format_is_stale_once_with_its_reason(xsec_config, store):
    import hashlib

    run(xsec_config, store, stages=["xsec"])
    # Rewrite the ledger as the first release wrote it: no format, fingerprints of another encoding.
    for f in (store / "_ledger" / "xsec").glob("*.json"):
        e = json.loads(f.read_text())
        old = [hashlib.sha256(r.encode()).hexdigest() for r in e["rows"]]
        f.write_text(json.dumps({"fingerprint": hashlib.sha256("".join(old).encode()).hexdigest(), "rows": old, "start": e["start"]}))
    before = _load(store)
    st = stage_status(STAGES["xsec"], xsec_config, store)
    assert st["chunks_stale"] == st["chunks_total"]
    assert "older format" in st["reason"] and "unversioned" in st["reason"]
    res = run(xsec_config, store, stages=["xsec"]).stages["xsec"]
    assert res.chunks_computed == res.chunks_total
    assert any("older format" in n for n in res.notes)
    again = run(xsec_config, store, stages=["xsec"]).stages["xsec"]
    assert again.chunks_computed == 0 and not any("older format" in n for n in again.notes)
    assert "reason" not in stage_status(STAGES["xsec"], xsec_config, store)
    xr.testing.assert_identical(before, _load(store))


def test_old_format_rows_are_never_copied_after_a_layout_change(xsec_config, store):
    run(xsec_config, store, stages=["xsec"])
    for f in (store / "_ledger" / "xsec").glob("*.json"):
        e = json.loads(f.read_text())
        e.pop("format")  # same row strings, but no longer known to mean the same thing
        f.write_text(json.dumps(e))
    wider = _with_xsec(xsec_config, E_p={"min": 0.1, "max": 1.0e5, "per_decade": 4})
    res = run(wider, store, stages=["xsec"]).stages["xsec"]
    assert res.chunks_copied == 0 and res.chunks_computed == res.chunks_total


def test_full_disk_mid_stage_is_one_message_and_loses_nothing(xsec_config, store, tmp_path, monkeypatch):
    import errno

    from cube import store as cs_mod

    real = cs_mod.write_chunk
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(cs_mod, "write_chunk", flaky)
    with pytest.raises(cs.StoreError, match="No space left on device.*intact.*free disk space"):
        run(xsec_config, store, stages=["xsec"])
    # a new group is built in its staging group: the three written chunks are recorded there
    assert len(cs.read_ledger(store, cs.staging_name("xsec"))) == 3
    monkeypatch.setattr(cs_mod, "write_chunk", real)
    res = run(xsec_config, store, stages=["xsec"]).stages["xsec"]
    assert res.chunks_computed == res.chunks_total - 3
    fresh = tmp_path / "fresh.zarr"
    run(xsec_config, fresh, stages=["xsec"])
    xr.testing.assert_identical(_load(store), _load(fresh))


_READ_ONLY_CLI = """
import errno, sys
from cube import store as cs
def refuse(*a, **k):
    raise OSError(errno.EROFS, "Read-only file system")
cs.write_chunk = refuse
cs.record = refuse
from tasks.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_read_only_store_is_one_message_and_keeps_its_chunks(xsec_config, store):
    run(xsec_config, store, stages=["xsec"])
    before = _load(store)
    cfg = store.parent / "c.yaml"
    cfg.write_text(
        "preset: quick\nxsec:\n  E_p: {min: 0.1, max: 1.0e5, per_decade: 4}\n  energy: {min: 0.1, max: 100.0, per_decade: 4}\n  chunk: 3\n"
    )
    r = subprocess.run([sys.executable, "-c", _READ_ONLY_CLI, "run", "--config", str(cfg), "--store", str(store),
                        "--cluster", "sync", "--stages", "xsec"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "Read-only file system" in r.stderr and "writable --store" in r.stderr and "Traceback" not in r.stderr
    xr.testing.assert_identical(before, _load(store))


def test_a_worker_killed_mid_stage_loses_nothing(tmp_path, tiny_store):
    import shutil
    import threading

    from .stages.small_store import tiny_config

    # The tiny store's library (16 chunks) on a fresh store that starts with the tiny store's
    # derived inputs (its evolution tracks, as on any rerun), so the stage's time is the templates
    # themselves; the numbers must equal the tiny store's, computed in-process.
    config = tiny_config()
    store = tmp_path / "s.zarr"
    store.mkdir()
    shutil.copytree(tiny_store / "_cache", store / "_cache")
    ledger = store / "_ledger" / cs.staging_name("templates")
    killed = []

    def kill_one_worker(pid):
        # triggered by the second recorded chunk; the deadline only ends a stuck watcher (the test then fails)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if ledger.is_dir() and len(list(ledger.glob("*.json"))) >= 2:
                os.kill(pid, signal.SIGKILL)
                killed.append(len(list(ledger.glob("*.json"))))
                return
            time.sleep(0.05)

    with make_client("local", 2) as client:
        pid = next(iter(client.run(os.getpid).values()))
        t = threading.Thread(target=kill_one_worker, args=(pid,))
        t.start()
        res = run(config, store, client=client, stages=["templates"]).stages["templates"]
        t.join()
    assert killed and killed[0] < res.chunks_total  # it died mid-stage
    assert res.chunks_computed == res.chunks_total
    assert len(cs.read_ledger(store, "templates")) == res.chunks_total
    xr.testing.assert_identical(_load(store, "templates"), _load(tiny_store, "templates"))


@pytest.mark.parametrize("stage, upstream, over", [
    ("emissivity", "population", {"galaxy.R_points": 25, "galaxy.chunk": 1}),
    ("sky", "emissivity", {"sky.steps": 256, "sky.chunk": 16}),
])
def test_sigkill_mid_galaxy_stage_then_rerun_equals_uninterrupted(tmp_path, tiny_store, stage, upstream, over):
    import shutil

    from .stages.small_store import tiny_config

    # On a copy of the tiny store: 25 emissivity chunks (population resampled on 25 R nodes,
    # templates and yields kept), or 48 sky chunks of 256 nodes per line of sight.
    config = tiny_config(**over)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(json.loads(config.model_dump_json())))
    base = tmp_path / "base.zarr"
    shutil.copytree(tiny_store, base)
    run(config, base, stages=[upstream])
    killed, clean = tmp_path / "killed.zarr", tmp_path / "clean.zarr"
    shutil.copytree(base, killed)
    shutil.copytree(base, clean)

    p = _cli("run", "--config", str(cfg), "--store", str(killed), "--cluster", "sync", "--stages", stage)
    n_done = _kill_when_recorded(p, killed / "_ledger" / cs.staging_name(stage), 3)
    again = _cli("run", "--config", str(cfg), "--store", str(killed), "--cluster", "sync", "--stages", stage, "--json")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])["stages"][stage]
    assert n_done < summary["chunks_total"]
    assert summary["chunks_computed"] <= summary["chunks_total"] - n_done + 1
    ok = _cli("run", "--config", str(cfg), "--store", str(clean), "--cluster", "sync", "--stages", stage)
    assert ok.wait(300) == 0
    xr.testing.assert_identical(_load(killed, stage), _load(clean, stage))
