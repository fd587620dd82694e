"""``status`` is cheap: it plans without preparing, and never imports plotting, astropy or the track code."""

import json
import subprocess
import sys

import yaml

from tasks.runner import run

#: Modules that cost seconds to import or to run and have no place in deciding what is stale.
HEAVY = ("matplotlib", "astropy", "healpy", "cosmic", "numba", "distributed")

_PROBE = r"""
import json, sys
import tasks.cli, tasks.runner, tasks.stages
from tasks.config import load_config
status = None
if len(sys.argv) > 1:
    status = tasks.runner.status(load_config(sys.argv[1]), sys.argv[2])
print(json.dumps({"status": status, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
""" % (HEAVY,)


def _probe(*args) -> dict:
    r = subprocess.run([sys.executable, "-c", _PROBE, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_the_runner_and_the_stages_loads_no_heavy_module():
    assert _probe()["loaded"] == []


def test_status_on_a_store_plans_every_stage_without_heavy_work(xsec_config, store, tmp_path):
    run(xsec_config, store, stages=["xsec"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(xsec_config.model_dump(mode="json")))
    got = _probe(cfg, store)
    assert got["loaded"] == []  # no track evolved, no kernel compiled, no map drawn
    st = got["status"]
    assert st["xsec"]["chunks_stale"] == 0
    # the library is built by the templates stage's prepare step, which status never runs
    assert st["templates"]["needs_run"] and "tracks to evolve" in st["templates"]["status"]
    assert st["yields"]["status"].startswith("waiting for upstream")
