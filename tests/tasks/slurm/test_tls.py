"""TLS on a real Slurm: nobody else can use a run's workers; and a job that never starts is named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tasks import cluster as tc

from .helpers import GUARD, gone_from_squeue, jobqueue

pytestmark = pytest.mark.slurm


# --- TLS: nobody else can use our workers --------------------------------------------------------


_CONNECT = """
import sys
from distributed import Client
from distributed.security import Security
address, kind = sys.argv[1], sys.argv[2]
security = Security.temporary() if kind == "other-certificate" else None
try:
    Client(address, security=security, timeout="30s")
    print("CONNECTED")
except Exception as exc:  # what a refused client sees
    print(f"REFUSED {type(exc).__name__}: {exc}")
"""


def _try_to_connect(address: str, kind: str) -> str:
    # each client in a fresh process: a refused Client leaves dask state behind in its process
    r = subprocess.run([sys.executable, "-c", _CONNECT, address, kind], capture_output=True, text=True, timeout=GUARD)
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr


def test_tls_refuses_clients_without_this_runs_certificate(tmp_path):
    # A credentials directory of this test's own: the default one is shared by every Slurm run of
    # this user, and the other xdist worker's Slurm tests run at the same time.
    shared = tmp_path / "tls"
    jq, _ = jobqueue(tmp_path, **{"shared-temp-directory": str(shared)})
    with tc.make_client("slurm", 1, jq, wait_timeout=GUARD) as client:
        address = client.scheduler.address
        assert address.startswith("tls://")
        assert client.submit(sum, [1, 2, 3]).result() == 6
        creds = sorted(shared.glob(".dask-jobqueue.worker.*"))
        assert creds and all(f.stat().st_mode & 0o777 == 0o600 for f in creds)
        assert shared.stat().st_mode & 0o777 == 0o700
        plain = _try_to_connect(address, "no-tls")  # no TLS at all
        assert plain.startswith("REFUSED") and "TLS" in plain, plain
        tcp = _try_to_connect(address.replace("tls://", "tcp://"), "no-tls")  # plain TCP at the TLS port
        assert tcp.startswith("REFUSED"), tcp
        other = _try_to_connect(address, "other-certificate")  # TLS with someone else's certificate
        assert other.startswith("REFUSED") and "certificate" in other.lower(), other
        assert client.submit(sum, [4, 5]).result() == 9  # ours still works
    assert not any(f.exists() for f in creds), "credentials left on disk after the run"


def test_tls_off_is_plain_tcp(tmp_path):
    jq, _ = jobqueue(tmp_path)
    with tc.make_client("slurm", 1, jq, tls=False, wait_timeout=GUARD) as client:
        assert client.scheduler.address.startswith("tcp://")
        assert client.submit(sum, [1, 2, 3]).result() == 6


def test_a_job_that_never_starts_names_squeues_reason(tmp_path):
    # --hold: Slurm keeps the job pending forever, so the wait must end with its timeout;
    # the outcome does not depend on how long that is.
    jq, name = jobqueue(tmp_path, **{"job-extra-directives": ["--hold"]})
    with pytest.raises(tc.ClusterError, match=r"0 of 1 Dask workers .* within 2 s; squeue says: \d+ PENDING \(JobHeldUser\)"):
        with tc.make_client("slurm", 1, jq, wait_timeout=2):
            pass
    gone_from_squeue(name)
