"""Line-of-sight quadrature and sky regions against closed forms (docs/physics.md P7)."""

import healpy as hp
import numpy as np
import pytest

from tasks.kernels.los import KPC_CM, exit_distance, intensity, interp_weights, ray_nodes
from tasks.kernels.regions import BUILTIN_REGIONS, region_nodes, solid_angle

RNG = np.random.default_rng(11)
L_RAND = RNG.uniform(0, 360, 2000)
B_RAND = np.degrees(np.arcsin(RNG.uniform(-1, 1, 2000)))


def test_uniform_sphere_around_the_observer():
    D, q = 2.5, 3.0  # kpc, cm^-3
    rays = ray_nodes(L_RAND, B_RAND, 8.5, 0.0, 30.0, 5.0, 64, s_max=D)
    I = intensity(rays, lambda R, z: np.full(R.shape, q))
    np.testing.assert_allclose(I, q * D * KPC_CM / (4 * np.pi), rtol=1e-3)


def test_exit_distance_matches_a_brute_force_march():
    l, b = L_RAND[:200], B_RAND[:200]
    D = exit_distance(l, b, 8.5, 0.1, 30.0, 5.0)
    s = np.linspace(0, 60, 600001)
    for li, bi, Di in zip(l[:20], b[:20], D[:20]):
        lr, br = np.radians(li), np.radians(bi)
        x = 8.5 - s * np.cos(br) * np.cos(lr)
        y = s * np.cos(br) * np.sin(lr)
        z = 0.1 + s * np.sin(br)
        inside = (np.hypot(x, y) <= 30.0) & (np.abs(z) <= 5.0)
        assert Di == pytest.approx(s[np.argmin(inside)], abs=2e-4)
    # and a uniform cylinder gives I = q D / 4 pi
    rays = ray_nodes(l, b, 8.5, 0.1, 30.0, 5.0, 32)
    np.testing.assert_allclose(rays.length, D)
    np.testing.assert_allclose(intensity(rays, lambda R, z: np.ones(R.shape)), D * KPC_CM / (4 * np.pi), rtol=1e-12)


@pytest.mark.parametrize("steps", [64, 800])
def test_thin_exponential_disk_latitude_profile(steps):
    # an infinite disk n0 exp(-|z|/z_d), observer in the plane: I(b) = n0 z_d (1 - e^{-z_max/z_d}) / (4 pi |sin b|)
    z_d, z_max = 0.3, 5.0
    b = np.array([-60.0, -10.0, -2.0, 1.0, 3.0, 20.0, 45.0, 89.0])
    l = np.full(b.size, 123.0)
    rays = ray_nodes(l, b, 8.5, 0.0, 1e4, z_max, steps)
    I = intensity(rays, lambda R, z: np.exp(-np.abs(z) / z_d))
    exact = z_d * (1 - np.exp(-z_max / z_d)) / np.abs(np.sin(np.radians(b))) * KPC_CM / (4 * np.pi)
    np.testing.assert_allclose(I, exact, rtol=1e-3)


def test_all_sky_integral_of_a_compact_source_equals_its_volume_integral():
    # A Gaussian blob (sigma 0.4 kpc) 3 kpc from the observer: sum_pix I dOmega = int q / (4 pi d^2) dV
    obs = np.array([8.5, 0.0, 0.0])
    c, sig = np.array([6.0, 1.2, 0.5]), 0.4

    def q_xyz(x, y, z):
        return np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) / (2 * sig**2))

    # the model is axisymmetric in R: a blob is not, so integrate it in Cartesian form along the rays
    nside = 64
    l, b = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), lonlat=True)
    rays = ray_nodes(l, b, 8.5, 0.0, 30.0, 5.0, 256, s_max=6.0)
    lr, br = np.radians(l)[:, None], np.radians(b)[:, None]
    s = rays.s
    x = 8.5 - s * np.cos(br) * np.cos(lr)
    y = s * np.cos(br) * np.sin(lr)
    z = s * np.sin(br)
    I = (q_xyz(x, y, z) * rays.w).sum(axis=1) / (4 * np.pi)
    total = I.sum() * hp.nside2pixarea(nside)
    # independent: a Cartesian sum of q / (4 pi d^2) over the blob
    g = np.linspace(-2.4, 2.4, 241)
    X, Y, Z = np.meshgrid(c[0] + g, c[1] + g, c[2] + g, indexing="ij")
    d2 = (X - obs[0]) ** 2 + (Y - obs[1]) ** 2 + (Z - obs[2]) ** 2
    volume = (q_xyz(X, Y, Z) / (4 * np.pi * d2)).sum() * (g[1] - g[0]) ** 3
    assert total == pytest.approx(volume, rel=1e-3)


@pytest.mark.parametrize("name", list(BUILTIN_REGIONS))
def test_region_solid_angles_are_exact(name):
    l, b, w = region_nodes(BUILTIN_REGIONS[name], 0.5, 8)
    expected = {
        "galactic_plane": np.radians(360) * 2 * np.sin(np.radians(5)),
        "lhaaso_inner": np.radians(110) * 2 * np.sin(np.radians(5)),
        "lhaaso_outer": np.radians(110) * 2 * np.sin(np.radians(5)),
        "hawc_plane": np.radians(30) * 2 * np.sin(np.radians(4)),
        "inner_galaxy": np.radians(60) * 2 * np.sin(np.radians(5)),
        "high_latitude": np.radians(360) * 2 * (1 - np.sin(np.radians(20))),
        "all_sky": 4 * np.pi,
    }[name]
    assert w.sum() == pytest.approx(expected, rel=1e-12)
    assert solid_angle(BUILTIN_REGIONS[name]) == pytest.approx(expected, rel=1e-12)
    assert ((l >= 0) & (l < 360)).all() and (np.abs(b) <= 90).all()
    if name == "inner_galaxy":
        assert ((l < 30) | (l > 330)).all()


def test_region_quadrature_integrates_smooth_and_peaked_functions():
    l, b, w = region_nodes(BUILTIN_REGIONS["all_sky"], 2.0, 8)
    assert (w * np.sin(np.radians(b)) ** 2).sum() == pytest.approx(4 * np.pi / 3, rel=1e-10)
    # a profile peaked on the plane, exp(-|b|/1 deg), over |b| < 5
    l, b, w = region_nodes(BUILTIN_REGIONS["galactic_plane"], 1.0, 8)
    got = (w * np.exp(-np.abs(b))).sum()
    bb = np.linspace(0, 5, 200001)
    ref = 2 * np.radians(360) * np.trapezoid(np.exp(-bb) * np.cos(np.radians(bb)) * np.radians(1), bb)
    assert got == pytest.approx(ref, rel=1e-6)


def test_interp_weights_are_linear_and_clamped():
    g = np.array([0.0, 1.0, 3.0])
    i, t = interp_weights(np.array([-1.0, 0.5, 2.0, 3.0, 7.0]), g)
    vals = g[i] * (1 - t) + g[i + 1] * t
    np.testing.assert_allclose(vals, [0.0, 0.5, 2.0, 3.0, 3.0])
