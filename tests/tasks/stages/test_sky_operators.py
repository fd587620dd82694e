"""The line-of-sight operators of the sky and sed stages, cached in the store (issue #17).

Maps and region means are linear in L_bar once the geometry is fixed: the operators of each sky
chunk and region are derived inputs in ``<store>/_cache/{sky,sed}_operator``, keyed by the
geometry alone.  Checked on copies of the session's tiny store (built by this code, so its cache
holds the operators): the cached products equal the line-of-sight integration, a yields-only
change integrates no ray and equals a fresh computation, a geometry change never reuses an
operator, and a corrupt or pickled entry is rebuilt with a warning, never unpickled.
"""

import json
import pickle
import shutil

import numpy as np
import pytest

import cube
import zarr
from tasks.runner import run
from tasks.stages import sed as D
from tasks.stages import sky as S

from .small_store import tiny_config

_CACHES = ("sky_operator", "sed_operator")


def _copy(store, tmp_path, name="w.zarr"):
    work = tmp_path / name
    shutil.copytree(store, work)
    return work


def _no_rays(monkeypatch) -> list:
    """Count the line-of-sight integrations (calls of ``ray_nodes`` by the stages)."""
    calls = []
    real = S.ray_nodes

    def counted(*args, **kw):
        calls.append(len(args[0]))
        return real(*args, **kw)

    monkeypatch.setattr(S, "ray_nodes", counted)
    return calls


def _drop_sky_and_sed(store) -> None:
    """Remove the maps, the region spectra and their cached operators: the next run computes them afresh."""
    for g in ("sky", "sed"):
        shutil.rmtree(store / g)
        shutil.rmtree(store / "_ledger" / g)
    for kind in _CACHES:
        shutil.rmtree(store / "_cache" / kind)


def _assert_same_cube(a, b, group: str, rtol: float = 1e-12) -> None:
    x, y = cube.open(a, group).load(), cube.open(b, group).load()
    assert set(x.data_vars) == set(y.data_vars)
    for v in x.data_vars:
        np.testing.assert_allclose(x[v].values, y[v].values, rtol=rtol, atol=0, err_msg=f"{group}.{v}")


def test_the_tiny_store_caches_one_operator_per_sky_chunk_and_region(tiny_store, tiny_summary):
    # built in one run: every chunk built its operators (none were cached before)
    assert tiny_summary.stages["sky"].work == {"los_operators_cached": 0}
    assert tiny_summary.stages["sed"].work == {"los_operators_cached": 0}
    cfg = tiny_config()
    plan, plan_sed = S.plan(cfg, tiny_store), D.plan(cfg, tiny_store)
    los = plan.payload.los
    entries = [S.sky_entry(los, 8, a, min(a + 256, 768)) for a in range(0, 768, 256)]
    boxes = plan_sed.payload.boxes
    entries += [S.region_entry(los, boxes[k], 2.0, 4) for k in plan_sed.payload.names]
    assert all(p.is_file() for p in entries)
    assert sorted(p.name for kind in _CACHES for p in (tiny_store / "_cache" / kind).iterdir()) == sorted(p.name for p in entries)
    # the thin disk's (pixels x R nodes) operator and one column per other component, float64
    # and they are the operators of the line-of-sight integration, bit for bit
    sky = cube.open(tiny_store, "sky")
    emissivity = cube.open(tiny_store, "emissivity")
    l, b = sky.l.values[256:512], sky.b.values[256:512]
    built = S.stack_blocks(list(S.operator_blocks(l, b, los, emissivity.R.values, emissivity.z.values)))
    with np.load(entries[1], allow_pickle=False) as data:
        assert data["thin"].shape == (256, 9) and data["thin"].dtype == np.float64
        assert all(data[c].shape == (256, 1) for c in ("bulge", "bulge_young", "thick"))
        for c in S.COMPONENTS:
            np.testing.assert_array_equal(data[c], built[c], err_msg=c)


def test_cached_operators_give_the_line_of_sight_integral(tiny_store, tmp_path, monkeypatch):
    # The stages' compute with the cached operators (no ray is integrated) against the direct
    # line-of-sight integration (galaxy_intensity; sed with the cache switched off), to 1e-12.
    cfg = tiny_config()
    work = _copy(tiny_store, tmp_path)
    sky_payload, sed_payload = S.plan(cfg, work).payload, D.plan(cfg, work).payload
    lbar = S.emissivity_inputs(str(work), f"direct-{work}", sky_payload.los["modes"])
    sky = cube.open(work, "sky").load()
    direct, err = S.galaxy_intensity(sky.l.values, sky.b.values, sky_payload.los, lbar)
    calls = _no_rays(monkeypatch)
    maps = [S.compute(a, a + 256, sky_payload) for a in (0, 256, 512)]
    regions = [D.compute(i, i + 1, sed_payload) for i in range(len(sed_payload.names))]
    assert calls == []
    monkeypatch.undo()
    got = np.concatenate([m.intensity.values.reshape(256, -1) for m in maps])
    got_err = np.concatenate([m.intensity_stderr.values.reshape(256, -1) for m in maps])
    np.testing.assert_allclose(got, direct, rtol=1e-12, atol=0)
    np.testing.assert_allclose(got_err, err, rtol=1e-12, atol=0)
    uncached = D.SedPayload(**{**sed_payload.__dict__, "los": dict(sed_payload.los, operator_key=None)})
    for i, r in enumerate(regions):
        ref = D.compute(i, i + 1, uncached)
        for v in ("mean_intensity", "mean_intensity_stderr", "flux", "solid_angle"):
            np.testing.assert_allclose(r[v].values, ref[v].values, rtol=1e-12, atol=0, err_msg=f"{r.region.values} {v}")


def test_a_yields_only_change_integrates_no_ray_and_equals_a_fresh_run(tiny_store, tmp_path, monkeypatch):
    # mirroring.f_B_high changes the yields, hence L_bar, but no geometry: sky and sed are
    # recomputed from the cached operators alone, and equal sky and sed computed afresh
    cfg = tiny_config(**{"mirroring.f_B_high": 0.45})
    assert cfg.mirroring.f_B_high != tiny_config().mirroring.f_B_high
    work = _copy(tiny_store, tmp_path)
    calls = _no_rays(monkeypatch)
    res = run(cfg, work, stages=["sky", "sed"]).stages
    assert calls == []
    for g in ("sky", "sed"):
        assert res[g].chunks_computed == res[g].chunks_total == res[g].work["los_operators_cached"], g
    old, new = cube.open(tiny_store, "sky").intensity.load(), cube.open(work, "sky").intensity.load()
    assert float(np.abs(new / old - 1).max()) > 1e-3  # the change reaches the maps
    fresh = _copy(work, tmp_path, "fresh.zarr")
    _drop_sky_and_sed(fresh)
    res = run(cfg, fresh, stages=["sky", "sed"]).stages
    assert calls and res["sky"].work["los_operators_cached"] == res["sed"].work["los_operators_cached"] == 0
    for g in ("sky", "sed"):
        _assert_same_cube(work, fresh, g)


@pytest.mark.parametrize(
    "over",
    [
        {"sky.z_observer": 0.02},
        {"sky.steps": 32},
        {"galaxy.R_sun": 8.3},
        {"galaxy.R_max": 25.0},
        {"galaxy.z_max": 4.0},
        {"galaxy.mean_stellar_mass": 0.5},
        {"galaxy.thin.R_d": 2.9},
        {"galaxy.thin.z_d": 250.0},
        {"galaxy.thick.sigma0": 20.0},
        {"galaxy.bulge.r0": 0.1},
        {"galaxy.bulge.young_R": (2.0, 3.0)},
        {"galaxy.thin.feh_z_slope": -0.1},
        {"sky.cmb_attenuation": True},
    ],
)
def test_every_geometry_input_is_in_the_operator_key(over):
    grid = (np.linspace(0.0, 30.0, 9), np.linspace(0.0, 5.0, 6))
    base = S.operator_key(tiny_config(), *grid)
    key = S.operator_key(tiny_config(**over), *grid)
    assert key != base
    if over == {"sky.cmb_attenuation": True}:
        assert key is None  # energy-dependent operators: never cached, integrated along the rays


def test_the_operator_key_holds_the_grid_and_nothing_of_l_bar():
    R, z = np.linspace(0.0, 30.0, 9), np.linspace(0.0, 5.0, 6)
    base = S.operator_key(tiny_config(), R, z)
    assert S.operator_key(tiny_config(), np.linspace(0.0, 30.0, 10), z) != base
    assert S.operator_key(tiny_config(), R, np.linspace(0.0, 4.0, 6)) != base
    # the yields, the Monte Carlo sample, the energy grid and the chunking do not move the geometry
    for over in ({"mirroring.f_B_high": 0.45}, {"galaxy.stars_per_population": 8000}, {"galaxy.thin.age_rate": 0.2},
                 {"xsec.energy": {"min": 0.1, "max": 1.0e4, "per_decade": 4}}, {"sky.chunk": 128}, {"sky.nside": 16}):
        assert S.operator_key(tiny_config(**over), R, z) == base, over
    # the directions are in the entry's name: pixels and nside, region boxes and quadrature
    los = {"store": "/s", "operator_key": base}
    names = {S.sky_entry(los, 8, 0, 256), S.sky_entry(los, 8, 256, 512), S.sky_entry(los, 16, 0, 256), S.sky_entry(los, 8, 0, 255)}
    box = ((0.0, 10.0, -1.0, 1.0),)
    names |= {S.region_entry(los, box, 2.0, 4), S.region_entry(los, box, 1.0, 4), S.region_entry(los, box, 2.0, 8),
              S.region_entry(los, ((0.0, 10.0, -1.0, 2.0),), 2.0, 4)}
    assert len(names) == 8
    assert S.sky_entry(dict(los, operator_key=None), 8, 0, 256) is None
    assert S.region_entry(dict(los, operator_key=None), box, 2.0, 4) is None


@pytest.mark.parametrize("over", [{"sky.z_observer": 0.02}, {"sky.steps": 32}, {"sky.region_dl": 3.0}])
def test_a_geometry_change_builds_new_operators(tiny_store, tmp_path, over):
    # the rerun finds no operator for its geometry, and its maps and region means are the direct
    # integration (the same run on a copy without any cached operator)
    cfg = tiny_config(**over)
    work = _copy(tiny_store, tmp_path)
    res = run(cfg, work, stages=["sky", "sed"]).stages
    for g in ("sky", "sed"):
        assert res[g].work["los_operators_cached"] == 0, g
    assert res["sed"].chunks_computed == res["sed"].chunks_total
    fresh = _copy(tiny_store, tmp_path, "fresh.zarr")
    _drop_sky_and_sed(fresh)
    run(cfg, fresh, stages=["sky", "sed"])
    for g in ("sky", "sed"):
        _assert_same_cube(work, fresh, g)
    if "sky.region_dl" not in over:
        assert float(np.abs(cube.open(work, "sky").intensity / cube.open(tiny_store, "sky").intensity - 1).max()) > 1e-6


_UNPICKLED: list = []


def _tripwire() -> list:
    """Called only if a planted pickle is ever unpickled."""
    _UNPICKLED.append(True)
    return _UNPICKLED


class _Planted:
    def __reduce__(self):
        return (_tripwire, ())


def test_a_corrupt_or_pickled_entry_is_rebuilt_with_a_warning_and_never_unpickled(tiny_store, tmp_path, monkeypatch):
    cfg = tiny_config()
    work = _copy(tiny_store, tmp_path)
    sky_payload, sed_payload = S.plan(cfg, work).payload, D.plan(cfg, work).payload
    los = sky_payload.los
    entries = [S.sky_entry(los, 8, a, a + 256) for a in (0, 256, 512)]
    names = list(sed_payload.names)
    regions = [S.region_entry(los, sed_payload.boxes[k], 2.0, 4) for k in names]
    # garbage; a raw pickle; an npz holding a pickled object array; another chunk's valid entry;
    # a truncated entry
    entries[0].write_bytes(b"not a zip file at all")
    entries[1].write_bytes(pickle.dumps(_Planted()))
    np.savez(regions[0], key=np.array(regions[0].stem), **{c: np.array([_Planted()], dtype=object) for c in S.COMPONENTS})
    shutil.copyfile(regions[2], regions[1])
    regions[3].write_bytes(regions[3].read_bytes()[:200])
    calls = _no_rays(monkeypatch)
    with pytest.warns(UserWarning, match="unreadable operator cache") as caught:
        maps = [S.compute(a, a + 256, sky_payload) for a in (0, 256, 512)]
        spectra = [D.compute(i, i + 1, sed_payload) for i in range(len(names))]
    assert not _UNPICKLED
    assert len([w for w in caught if "unreadable operator cache" in str(w.message)]) == 5
    rebuilt = [len(D.region_nodes(sed_payload.boxes[names[i]], 2.0, 4)[0]) for i in (0, 1, 3)]
    assert sum(calls) == 256 + 256 + sum(rebuilt)  # rays integrated: sky chunks 0 and 1, regions 0, 1 and 3
    sky, sed = cube.open(tiny_store, "sky").load(), cube.open(tiny_store, "sed").load()
    for a, m in zip((0, 256, 512), maps):
        np.testing.assert_allclose(m.intensity, sky.intensity.isel(pixel=slice(a, a + 256)), rtol=1e-12, atol=0)
        np.testing.assert_allclose(m.intensity_stderr, sky.intensity_stderr.isel(pixel=slice(a, a + 256)), rtol=1e-12, atol=0)
    for i, r in enumerate(spectra):
        for v in ("mean_intensity", "mean_intensity_stderr"):
            np.testing.assert_allclose(r[v], sed[v].isel(region=slice(i, i + 1)), rtol=1e-12, atol=0)
    # the entries were rewritten: they read back as plain arrays, without warnings
    shapes = S.operator_shapes(los["modes"], 9, 6)
    for p in entries[:2]:
        assert S.read_operators(p, 256, shapes) is not None
    for i, n in zip((0, 1, 3), rebuilt):
        assert S.read_operators(regions[i], n, shapes) is not None


def test_the_sparse_r_z_operator_is_cached_as_plain_csr_arrays(tiny_store, tmp_path, monkeypatch):
    # feh_z_slope != 0: the thin disk's operator is (pixels x R z cells) sparse; its cache entry
    # holds the CSR parts and gives the direct integration back bit for bit
    cfg = tiny_config()
    los = dict(S.plan(cfg, tiny_store).payload.los, store=str(tmp_path), modes=dict(S.component_modes(cfg.galaxy), thin="Rz"))
    lbar = S.emissivity_inputs(str(tiny_store), f"Rz-{tiny_store}", los["modes"])
    l, b = np.linspace(0.0, 359.0, 1500), np.linspace(-80.0, 80.0, 1500)  # two blocks
    entry = S.sky_entry(los, 8, 0, 1500)
    direct = S.galaxy_intensity(l, b, los, lbar, per_component=True)
    built = S.cached_intensity(l, b, los, lbar, entry, per_component=True)
    calls = _no_rays(monkeypatch)
    read = S.cached_intensity(l, b, los, lbar, entry, per_component=True)
    assert calls == []
    for d, x, y in zip(direct, built, read):
        np.testing.assert_array_equal(x, d)
        np.testing.assert_array_equal(y, d)
    with np.load(entry, allow_pickle=False) as data:
        assert data["thin.shape"].tolist() == [1500, 9 * 6] and "thin" not in data.files
        assert data["thin.indptr"].size == 1501 and data["thin.data"].dtype == np.float64


def test_map_operator_bytes_is_what_the_cache_holds(tiny_store):
    # dense operators: exactly the arrays of the map's entries; sparse R-z: an upper bound
    cfg = tiny_config()
    los = S.plan(cfg, tiny_store).payload.los
    entries = [S.sky_entry(los, 8, a, a + 256) for a in (0, 256, 512)]
    stored = 0
    for p in entries:
        with np.load(p, allow_pickle=False) as data:
            stored += sum(data[c].nbytes for c in S.COMPONENTS)
    assert stored == S.map_operator_bytes(los["modes"], 9, 6, cfg.sky.steps, 768) == 768 * (9 + 3) * 8
    # the paper's map (121 R nodes, 800 nodes per ray): 0.78 GB at nside 256, 12.5 GB at nside 1024
    paper = S.component_modes(cfg.galaxy)
    assert S.map_operator_bytes(paper, 121, 101, 800, 12 * 256**2) == 12 * 256**2 * 124 * 8
    assert S.map_operator_bytes(paper, 121, 101, 800, 12 * 1024**2) / 1e9 == pytest.approx(12.48, abs=0.01)
    rz = dict(paper, thin="Rz")
    assert S.map_operator_bytes(rz, 9, 6, 32, 10) == 10 * (12 * 9 * 6 + 4 + 3 * 8)  # every cell
    assert S.map_operator_bytes(rz, 121, 101, 800, 10) == 10 * (12 * 4 * 800 + 4 + 3 * 8)  # every node's 4 cells


def test_the_sparse_r_z_estimate_bounds_the_stored_csr():
    cfg = tiny_config()
    modes = dict(S.component_modes(cfg.galaxy), thin="Rz")
    R, z = np.linspace(0.0, 30.0, 40), np.linspace(0.0, 5.0, 30)
    los = {"galaxy": cfg.galaxy, "z_obs": 0.0, "steps": 64, "modes": modes}
    l, b = np.linspace(0.0, 359.0, 300), np.linspace(-60.0, 60.0, 300)
    arrays = S.operator_arrays(S.stack_blocks(list(S.operator_blocks(l, b, los, R, z))), "k")
    stored = sum(a.nbytes for name, a in arrays.items() if name not in ("key", "thin.shape"))
    assert stored <= S.map_operator_bytes(modes, 40, 30, 64, 300)


def test_a_map_above_the_cache_limit_is_integrated_uncached_with_the_same_numbers(tiny_store, tmp_path):
    # tiny map: 768 pixels x 12 columns x 8 B = 73,728 B of operators
    work = _copy(tiny_store, tmp_path)
    _drop_sky_and_sed(work)
    over = tiny_config(**{"sky.operator_cache_gb": 7.3e-5})
    plan = S.plan(over, work)
    assert plan.payload.los["operator_key"] is None
    assert any("not cached: 7.37e-05 GB > sky.operator_cache_gb = 7.3e-05" in n for n in plan.notes)
    assert S.plan(tiny_config(**{"sky.operator_cache_gb": 7.4e-5}), work).payload.los["operator_key"] is not None
    res = run(over, work, stages=["sky"]).stages["sky"]
    assert res.chunks_computed == 3 and res.work == {"los_operators_cached": 0}
    assert not (work / "_cache" / "sky_operator").exists()
    x, y = cube.open(work, "sky").load(), cube.open(tiny_store, "sky").load()
    for v in ("intensity", "intensity_stderr"):
        np.testing.assert_array_equal(x[v].values, y[v].values, err_msg=v)
    # an execution setting: not in the cube's recorded configuration, and nothing is stale after it
    assert x.attrs["config"] == y.attrs["config"] and "operator_cache_gb" not in x.attrs["config"]["sky"]
    assert run(tiny_config(), work, stages=["sky"]).stages["sky"].chunks_computed == 0


def _codecs(store, group: str, var: str) -> list[str]:
    meta = json.loads((store / group / var / "zarr.json").read_text())
    return [c["name"] + (f"/{c['configuration'].get('cname')}" if c["name"] == "blosc" else "") for c in meta["codecs"]]


def test_maps_are_blosc_lz4_and_a_map_stored_with_zstd_keeps_its_codec(tiny_store, tmp_path):
    # The tiny store was built by this code: its maps are blosc lz4 (the sed means zarr's default).
    for v in ("intensity", "intensity_stderr"):
        assert _codecs(tiny_store, "sky", v) == ["bytes", "blosc/lz4"], v
    assert _codecs(tiny_store, "sed", "mean_intensity") == ["bytes", "zstd"]
    # A store built before has zstd maps: its chunks are recomputed in place, keep zstd and
    # hold the same values, to the bit.
    work = _copy(tiny_store, tmp_path)
    for v in ("intensity", "intensity_stderr"):
        old = zarr.open_array(str(work / "sky" / v), mode="r")
        values = old[...]
        new = zarr.create_array(
            str(work / "sky" / v), shape=old.shape, chunks=old.chunks, dtype=old.dtype, fill_value=np.nan,
            compressors=zarr.codecs.ZstdCodec(), dimension_names=old.metadata.dimension_names,
            attributes=dict(old.attrs), overwrite=True,
        )
        new[...] = np.full_like(values, -1.0)  # wrong values, to be overwritten by the rerun
    shutil.rmtree(work / "_ledger" / "sky")
    res = run(tiny_config(), work, stages=["sky"]).stages["sky"]
    assert res.chunks_computed == res.chunks_total == 3
    ref, got = cube.open(tiny_store, "sky").load(), cube.open(work, "sky").load()
    for v in ("intensity", "intensity_stderr"):
        assert _codecs(work, "sky", v) == ["bytes", "zstd"], v
        assert np.array_equal(got[v].values.view(np.uint64), ref[v].values.view(np.uint64)), v
