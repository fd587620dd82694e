"""Speed of the evolutionary-track generator (catalogs.stellar.tracks).

Prints tracks evolved per second (COSMIC-SSE run + resampling into snapshots) for a
mass x metallicity grid spanning the library range. Not part of the test suite.

    .venv/bin/python benchmarks/bench_tracks.py [n_mass] [n_z]     # from the repository's top folder
"""

from __future__ import annotations

import sys
import time

import numpy as np

from catalogs.stellar.tracks import DEFAULT_SNAPSHOTS_PER_STAGE, evolve_tracks


def main(n_mass: int = 40, n_z: int = 5) -> None:
    masses = np.geomspace(0.1, 25.0, n_mass)
    metallicities = np.geomspace(1e-4, 0.03, n_z)
    evolve_tracks([1.0], [0.02])  # warm-up: imports, settings file
    t0 = time.perf_counter()
    df = evolve_tracks(masses, metallicities, snapshots_per_stage=DEFAULT_SNAPSHOTS_PER_STAGE)
    dt = time.perf_counter() - t0
    n_tracks = n_mass * n_z
    print(f"tracks: {n_tracks} ({n_mass} masses 0.1-25 Msun x {n_z} Z 1e-4-0.03)")
    print(f"snapshots: {len(df)} ({DEFAULT_SNAPSHOTS_PER_STAGE})")
    print(f"wall time: {dt:.2f} s  ->  {n_tracks / dt:.1f} tracks/s, {len(df) / dt:.0f} snapshots/s")
    print("stage counts:", df.stage.value_counts().to_dict())


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
