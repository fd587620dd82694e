"""The run configuration: one YAML schema for every parameter of docs/physics.md, validated on load.

Defaults are the paper's values (and the project's documented choices, marked
[choice] in docs/physics.md).  Two presets ship with the package: ``quick`` (seconds on a
laptop) and ``paper`` (full resolution, for a cluster).  A user file may start from a
preset with ``preset: quick`` and override single keys; everything else is validated
strictly: an unknown key, a wrong type or an out-of-range value is one
:class:`ConfigError` that names the key path.
"""

from __future__ import annotations

import copy
import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ConfigError",
    "Config",
    "EnergyGrid",
    "load_config",
    "load_preset",
    "with_overrides",
    "check_paths",
    "PRESETS",
]

PRESETS = ("quick", "paper")

Positive = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file, the key path and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class EnergyGrid(_Section):
    """A log-spaced energy grid [TeV]: ``per_decade`` points per decade from ``min`` to ``max``.

    Points sit at ``10**(k / per_decade)`` TeV for integer k, so extending the range keeps
    every existing point (and its stored chunk) unchanged.
    """

    min: Positive
    max: Positive
    per_decade: Annotated[int, Field(ge=1, le=200)]

    @model_validator(mode="after")
    def _ordered(self) -> "EnergyGrid":
        if self.max <= self.min:
            raise ValueError(f"max ({self.max}) must be larger than min ({self.min})")
        return self

    def values(self):
        """The grid points [TeV] as a numpy array (anchored at 1 TeV, both ends included)."""
        import numpy as np

        k0 = math.ceil(round(math.log10(self.min) * self.per_decade, 9))
        k1 = math.floor(round(math.log10(self.max) * self.per_decade, 9))
        return 10.0 ** (np.arange(k0, k1 + 1) / self.per_decade)


class CosmicRays(_Section):
    """Proton intensity, docs/physics.md P1 (DAMPE 2019; LHAASO)."""

    norm: Positive = Field(8.63e-6, description="I_p(1 TeV) [cm^-2 s^-1 sr^-1 TeV^-1] [choice]")
    norm_energy: Positive = Field(1.0, description="energy of the normalisation [TeV]")
    indices: tuple[Positive, Positive, Positive, Positive] = (2.60, 2.85, 2.51, 3.50)
    breaks: tuple[Positive, Positive, Positive] = Field(
        (10.0, 340.0, 3300.0), description="E_s, E_b, E_k [TeV]"
    )

    @field_validator("breaks")
    @classmethod
    def _ascending(cls, v):
        if not (v[0] < v[1] < v[2]):
            raise ValueError(f"breaks must be ascending, got {list(v)}")
        return v


class Interactions(_Section):
    """Hadronic interactions and absorption, docs/physics.md P2.

    Neutrinos are all-flavour sums that escape the star freely: per-flavour oscillated
    spectra and nu-N absorption are not implemented, so there is no key for them.
    """

    nuclear_enhancement: Annotated[float, Field(ge=1, le=5)] = Field(
        1.8, description="N_nuc: CR nuclei and He/metal targets"
    )
    hydrogen_fraction: Fraction = Field(0.70, description="X for the pair-production length")
    pair_absorption: bool = Field(
        True,
        description="absorb gamma rays by pair production inside the star (lambda_pair); false sets "
        "lambda_pair to infinity, the unabsorbed limit, in both scenarios",
    )


class XsecStage(_Section):
    """The cross-section cube: E_p and secondary energy grids."""

    E_p: EnergyGrid = EnergyGrid(min=0.1, max=1.0e5, per_decade=10)
    energy: EnergyGrid = EnergyGrid(min=0.1, max=1.0e4, per_decade=10)
    chunk: Annotated[int, Field(ge=1)] = 8


class Atmosphere(_Section):
    """Near-surface structure model of the built-in generator, docs/physics.md P5."""

    alpha_mlt: Annotated[float, Field(gt=0, le=5)] = 1.8
    hydrogen_fraction: Fraction = Field(0.70, description="X at Z = 0.02; X scales as 0.76 - 3 Z")


class Templates(_Section):
    """The stellar template library, docs/physics.md P5."""

    source: Literal["generator", "mesa"] = "generator"
    mesa_logs: list[str] = Field(default_factory=list, description="MESA LOGS/ directories")
    masses: list[Annotated[float, Field(ge=0.1, le=25)]] = Field(
        default_factory=lambda: [0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 1.0, 1.2, 1.41, 2.0, 3.0, 5.0, 10.0, 15.0, 25.0]
    )
    metallicities: list[Annotated[float, Field(ge=1e-4, le=0.03)]] = Field(
        default_factory=lambda: [1e-4, 0.002, 0.008, 0.02, 0.03]
    )
    snapshots_per_stage: dict[Literal["MS", "RGB", "CHeB", "EAGB", "TPAGB"], Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: {"MS": 10, "RGB": 5, "CHeB": 5, "EAGB": 3, "TPAGB": 3}
    )
    extra_snapshots: list[tuple[Annotated[float, Field(ge=0.1, le=25)], Annotated[float, Field(ge=1e-4, le=0.03)], Positive]] = Field(
        default_factory=lambda: [(1.0, 0.02, 4.57e9)],
        description="(mass_init, Z, age [yr]) snapshots always present (the Sun)",
    )
    max_age: Positive = Field(1.4e10, description="tracks are followed to this age at most [yr]")
    min_envelope_mass: Positive = Field(
        0.01, description="[Msun] a post-MS star with a thinner H envelope ends its track (post-AGB) [choice]"
    )
    radius_points: Annotated[int, Field(ge=16, le=4096)] = 300
    depth_min: Annotated[float, Field(gt=0, lt=1e-2)] = 1e-7
    atmosphere: Atmosphere = Atmosphere()
    chunk: Annotated[int, Field(ge=1)] = 64

    @model_validator(mode="after")
    def _mesa_needs_logs(self) -> "Templates":
        if self.source == "mesa" and not self.mesa_logs:
            raise ValueError("source is 'mesa' but mesa_logs lists no LOGS directory")
        return self


class Mirroring(_Section):
    """The canonical-momentum mirroring model and its surface parameters, docs/physics.md P4."""

    calibration: Literal["hawc", "none"] | Positive = Field(
        "hawc",
        description="hawc: scale L_mirror so that the solar template matches HAWC (needs a solar "
        "template); none: no scale factor; a number: that factor, for libraries without a Sun",
    )
    calibration_applies_to: Literal["gamma", "both"] = Field(
        "gamma",
        description="messengers the calibration factor scales: gamma (default) keeps the neutrinos "
        "within the black-sphere bound (one interaction per primary; docs/physics.md P4); both is the "
        "paper's literal reading and puts the calibrated Sun's neutrinos above that bound",
    )
    hawc_fit: Literal["lsq", "pivot"] = Field(
        "pivot",
        description="pivot: match HAWC at hawc_pivot (its normalisation energy, where it is best "
        "measured); lsq: least squares in log flux over hawc_range",
    )
    hawc_pivot: Positive = Field(1.0, description="[TeV] energy matched by the pivot fit")
    hawc_norm: Positive = Field(1.6e-12, description="HAWC quiet Sun dN/dE at 1 TeV [TeV^-1 cm^-2 s^-1]")
    hawc_index: Positive = 3.62
    hawc_range: tuple[Positive, Positive] = (0.5, 2.6)
    max_mass: Positive = Field(1.41, description="Kraft break [Msun]: no mirroring above")
    f_B_low: Fraction = Field(1.0, description="f_B below f_B_mass_low")
    f_B_high: Fraction = Field(0.7, description="f_B from f_B_mass_high to max_mass")
    f_B_mass_low: Positive = 0.30
    f_B_mass_high: Positive = 1.0
    t_sat_points: list[tuple[Positive, Positive]] = Field(
        default_factory=lambda: [(0.1, 5.0), (0.35, 2.0), (0.5, 0.6), (0.7, 0.25), (1.0, 0.1), (1.41, 0.05)],
        description="(M [Msun], t_sat [Gyr]) for log-log interpolation [choice]",
    )
    spindown_index: Positive = Field(0.5, description="f_age = (t/t_sat)^-index (Skumanich)")
    f_struct_nodes: tuple[Positive, Positive, Positive, Positive, Positive] = Field(
        (0.35, 0.5, 0.85, 1.32, 1.41), description="[Msun] joints of the continuous f_struct(m) [choice]"
    )
    f_struct_levels: tuple[Fraction, Fraction, Fraction] = Field(
        (0.95, 0.45, 0.30), description="f_struct plateaus: fully convective, 0.5 Msun, solar-type [choice]"
    )

    @model_validator(mode="after")
    def _order(self) -> "Mirroring":
        if self.hawc_range[0] >= self.hawc_range[1]:
            raise ValueError(f"hawc_range must be ascending, got {list(self.hawc_range)}")
        if self.f_B_mass_low >= self.f_B_mass_high:
            raise ValueError("f_B_mass_low must be below f_B_mass_high")
        if list(self.f_struct_nodes) != sorted(self.f_struct_nodes):
            raise ValueError(f"f_struct_nodes must be ascending, got {list(self.f_struct_nodes)}")
        return self


class YieldsStage(_Section):
    """Transport quadrature and chunking of the yields cube, docs/physics.md P3-P4.

    The defaults keep every stored scenario luminosity (0.1-1000 TeV), the Sun's pure
    mirroring gamma-ray luminosity (0.3-3 TeV) and the HAWC calibration factor within 1e-3 of a
    converged reference on real generated main-sequence templates (0.1-1.41 Msun); see
    ``benchmarks/convergence_yields.py`` for the study and the cost of each choice.
    """

    impact_points: Annotated[int, Field(ge=8, le=4096)] = Field(128, description="impact parameters per chord set")
    impact_depth_min: Annotated[float, Field(gt=0, lt=1e-3)] = Field(1e-12, description="smallest 1 - b/R")
    mu_points: Annotated[int, Field(ge=2, le=512)] = Field(6, description="Gauss nodes in the field-angle alpha")
    gamma_points: Annotated[int, Field(ge=4, le=1024)] = Field(24, description="tanh-rule nodes across the field")
    gamma_u_range: tuple[float, float] = Field(
        (-5.0, 6.0), description="tanh-rule range u (gamma = tanh u); the grazing side needs the larger |u|"
    )
    gauss_points: Annotated[int, Field(ge=1, le=16)] = Field(3, description="Gauss nodes per segment, outward leg")
    saturation: Annotated[float, Field(ge=5, le=100)] = Field(12.0, description="turning columns beyond this many lambda_pp are saturated")
    node_tol: Annotated[float, Field(ge=0, le=0.5)] = Field(0.04, description="segment thinning in ln Y (0 = exact)")
    dark_column: Annotated[float, Field(ge=20)] = Field(
        40.0,
        description="mirrored trajectories whose half-path column exceeds this many lambda_pp emit no gamma rays "
        "(the outward-leg integral is below e^-dark_column, absolute); inf = integrate them",
    )
    include_atmosphere: bool = Field(True, description="field-free layer holding the column above the photosphere")
    chunk: Annotated[int, Field(ge=1)] = 64

    @field_validator("gamma_u_range")
    @classmethod
    def _u_range(cls, v):
        if not v[0] < 0 < v[1]:
            raise ValueError(f"gamma_u_range must bracket 0 (u_min < 0 < u_max), got {list(v)}")
        return v


class Bulge(_Section):
    """Bulge density, ages and metallicities (lengths in pc unless marked)."""

    rho0: Positive = Field(101.0, description="[Msun pc^-3]")
    q: Positive = 0.5
    alpha: Positive = 1.8
    r0: Positive = Field(75.0, description="[pc]")
    r_cut: Positive = Field(2100.0, description="[pc]")
    age: Positive = Field(11.0, description="[Gyr]")
    feh: tuple[float, float] = (0.3, -0.3)
    feh_weights: tuple[Fraction, Fraction] = (0.75, 0.25)
    young_fraction: Fraction = 0.05
    young_ages: tuple[Positive, Positive] = Field((2.0, 5.0), description="[Gyr]")
    young_R: tuple[Positive, Positive] = Field((2.0, 3.5), description="[kpc]")
    young_abs_z: Positive = Field(0.25, description="[kpc]")


class Disk(_Section):
    """An exponential disk."""

    sigma0: Positive = Field(description="surface density [Msun pc^-2]")
    z_d: Positive = Field(description="scale height [pc]")
    R_d: Positive = Field(description="scale length [kpc]")


class ThinDisk(Disk):
    """Thin disk with its age-metallicity relation."""

    sigma0: Positive = 1070.0
    z_d: Positive = 300.0
    R_d: Positive = 2.43
    age_rate: Positive = Field(0.12, description="p(tau) ~ exp(-rate tau/Gyr) [choice]")
    age_max: Positive = Field(10.0, description="[Gyr]")
    feh0: float = 0.15
    feh_age_slope: float = -0.04
    feh_R_slope: float = -0.059
    feh_z_slope: float = Field(0.0, description="g_z [dex/kpc] [choice]")


class ThickDisk(Disk):
    """Thick disk: old, metal poor."""

    sigma0: Positive = 113.0
    z_d: Positive = 900.0
    R_d: Positive = 3.88
    age_mean: Positive = Field(11.0, description="[Gyr]")
    age_sigma: Positive = Field(1.5, description="[Gyr]")
    feh: float = -0.5


class IMF(_Section):
    """Broken power-law initial mass function dN/dM ~ M^-slope."""

    breaks: tuple[Positive, Positive, Positive] = Field((0.08, 0.5, 100.0), description="[Msun]")
    slopes: tuple[Positive, Positive] = (1.3, 2.3)
    max_template_mass: Positive = Field(25.0, description="heavier stars get zero yield [Msun]")
    strata: list[Positive] = Field(
        default_factory=lambda: [0.5, 1.0, 1.41, 2.0, 3.0, 5.0, 8.0, 15.0],
        description="[Msun] interior edges of the mass strata of the Monte Carlo [choice]",
    )
    strata_share: Fraction = Field(
        0.5,
        description="fraction of each batch spread equally over the strata, the rest follows the IMF; "
        "0 is plain IMF sampling [choice]",
    )

    @model_validator(mode="after")
    def _ordered(self) -> "IMF":
        if not (self.breaks[0] < self.breaks[1] < self.breaks[2]):
            raise ValueError(f"breaks must be ascending, got {list(self.breaks)}")
        if list(self.strata) != sorted(set(self.strata)):
            raise ValueError(f"strata must be ascending and distinct, got {list(self.strata)}")
        return self


class Galaxy(_Section):
    """Galactic population synthesis, docs/physics.md P6."""

    bulge: Bulge = Bulge()
    thin: ThinDisk = ThinDisk()
    thick: ThickDisk = ThickDisk()
    imf: IMF = IMF()
    mean_stellar_mass: Positive = Field(0.41, description="[Msun]")
    z_sun: Positive = Field(0.02, description="Z_sun for Z = Z_sun 10^[Fe/H] [choice]")
    R_sun: Positive = Field(8.5, description="[kpc]")
    estimator: Literal["eep", "knn"] = Field(
        "eep",
        description="template weights behind the emissivity: eep interpolates each star at its equivalent "
        "evolutionary phase (Dotter 2016) [beyond the paper]; knn is the paper's Eq. 19 (K nearest templates, "
        "Delta t / distance), biased by templates of other stages. Both are stored; switching samples no star",
    )
    neighbours: Annotated[int, Field(ge=1, le=100)] = Field(10, description="K of the knn estimator")
    stars_per_population: Annotated[int, Field(ge=100)] = Field(
        1_000_000,
        description="stars sampled for each distinct population (a component, and for the thin disk "
        "each [Fe/H] offset of the (R, z) grid); replaces the paper's per-cell sampling",
    )
    batches: Annotated[int, Field(ge=2, le=1000)] = Field(
        16, description="independent Monte Carlo batches per population; their spread is the standard error"
    )
    R_max: Positive = Field(30.0, description="[kpc]")
    z_max: Positive = Field(5.0, description="[kpc]")
    R_points: Annotated[int, Field(ge=2)] = 121
    z_points: Annotated[int, Field(ge=2)] = 101
    chunk: Annotated[int, Field(ge=1)] = Field(8, description="R rows per emissivity chunk")
    population_chunk: Annotated[int, Field(ge=1)] = Field(
        1, description="populations per Monte Carlo chunk (1: a parameter change resamples exactly the populations it touches)"
    )

    @model_validator(mode="after")
    def _divisible(self) -> "Galaxy":
        if self.stars_per_population % self.batches:
            raise ValueError(
                f"stars_per_population ({self.stars_per_population}) must be a multiple of batches ({self.batches})"
            )
        return self


class Region(_Section):
    """A box in Galactic coordinates [deg]; ``l = [min, max]`` with min > max wraps through l = 0."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    l: tuple[float, float]
    b: tuple[float, float]

    @model_validator(mode="after")
    def _box(self) -> "Region":
        lo, hi = self.b
        if not (-90.0 <= lo < hi <= 90.0):
            raise ValueError(f"region {self.name!r}: b must be [min, max] within [-90, 90] with min < max, got {list(self.b)}")
        if self.l[0] == self.l[1]:
            raise ValueError(f"region {self.name!r}: l_min == l_max ({self.l[0]}) is an empty box; use [0, 360] for all longitudes")
        if not all(-360.0 <= x <= 360.0 for x in self.l):
            raise ValueError(f"region {self.name!r}: l values must lie within [-360, 360] degrees, got {list(self.l)}")
        return self


class Sky(_Section):
    """Line-of-sight integration, HEALPix maps and region spectra, docs/physics.md P7."""

    nside: Annotated[int, Field(ge=1, le=8192)] = 256
    z_observer: float = Field(0.0, description="[kpc] [choice]")
    steps: Annotated[int, Field(ge=16)] = Field(800, description="Gauss-Legendre nodes per line of sight")
    cmb_attenuation: bool = Field(
        False,
        description="[choice, beyond the paper] absorb gamma rays on the CMB along each line of sight "
        "(pair production; matters above ~100 TeV; costs one more operator per attenuated energy)",
    )
    components: bool = Field(False, description="also store a map per Galactic component (4x the size)")
    chunk: Annotated[int, Field(ge=1)] = Field(
        12288, description="pixels per chunk (whatever nside: a worker's memory does not grow with the map)"
    )
    operator_cache_gb: Annotated[float, Field(ge=0)] = Field(
        4.0,
        description="[execution: changes no number] largest size [GB, 1e9 B] of a map's cached line-of-sight "
        "operators (<store>/_cache/sky_operator, ~1 kB per pixel with 121 R nodes: nside 256 0.8 GB, 512 3.1 GB, "
        "1024 12.5 GB); a larger map integrates its rays on every run instead; 0 never caches",
    )
    regions: list[Region] = Field(default_factory=list, description="user regions, besides the built-in ones")
    region_dl: Annotated[float, Field(gt=0, le=10)] = Field(
        0.5, description="[deg] longitude spacing of the region quadrature (midpoints)"
    )
    region_b_nodes: Annotated[int, Field(ge=2, le=64)] = Field(
        8, description="Gauss-Legendre nodes in sin b per latitude band of the region quadrature"
    )

    @model_validator(mode="after")
    def _unique_regions(self) -> "Sky":
        from tasks.kernels.regions import BUILTIN_REGIONS

        names = [r.name for r in self.regions]
        clash = sorted({n for n in names if names.count(n) > 1 or n in BUILTIN_REGIONS})
        if clash:
            raise ValueError(f"region names must be unique and differ from the built-in ones: {', '.join(clash)}")
        return self

    @field_validator("nside")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"nside must be a power of two (1, 2, 4, ..., 8192), got {v}")
        return v


class Comparisons(_Section):
    """Observational comparisons, docs/physics.md P8."""

    ebl_model: str = Field("dominguez", description="ebltable model for the IGRB extrapolation")
    igrb_model: Literal["A", "B", "C"] = "A"
    igrb_redshift: Annotated[float, Field(ge=0, le=4)] = Field(
        0.5, description="effective redshift of the EBL absorption of the extrapolated IGRB [choice]"
    )


class Run(_Section):
    """Execution settings that do not change any number in the cubes."""

    seed: Annotated[int, Field(ge=0)] = 20260411
    cluster: Literal["sync", "local", "slurm"] = "local"
    workers: Annotated[int, Field(ge=1)] | None = None
    jobqueue: str | None = Field(None, description="dask-jobqueue YAML (default deployment/jobqueue.yaml)")
    wait_timeout: Positive = Field(600.0, description="seconds to wait for Slurm workers")
    min_jobs: Annotated[int, Field(ge=1)] | None = Field(None, description="Slurm: adapt between min_jobs and max_jobs")
    max_jobs: Annotated[int, Field(ge=1)] | None = Field(None, description="Slurm: adapt between min_jobs and max_jobs")
    worker_lifetime: str | None = Field(
        None, description="Slurm: workers retire after this Dask duration (e.g. 3h50m, below the walltime)"
    )
    lifetime_stagger: str = Field("5m", description="Slurm: random spread of worker lifetimes")
    tls: bool = Field(
        True,
        description="Slurm: scheduler, workers and client talk TLS with this run's own certificate, so "
        "nobody else on the cluster can connect to the workers (see deployment/README.md before turning it off)",
    )
    dashboard_address: str | None = Field(
        ":8787",
        description="local/slurm: where the Dask dashboard listens (':8787'; ':0' any free port; null: no "
        "dashboard); needs bokeh",
    )

    @model_validator(mode="after")
    def _jobs(self) -> "Run":
        if self.min_jobs is not None and self.max_jobs is None:
            raise ValueError("min_jobs needs max_jobs (adaptive Slurm scaling between the two)")
        if self.max_jobs is not None and (self.min_jobs or 1) > self.max_jobs:
            raise ValueError(f"min_jobs ({self.min_jobs}) must not exceed max_jobs ({self.max_jobs})")
        return self


class Config(_Section):
    """The whole configuration; each section maps to one part of docs/physics.md."""

    preset: Literal["quick", "paper"] | None = None
    run: Run = Run()
    cosmic_rays: CosmicRays = CosmicRays()
    interactions: Interactions = Interactions()
    xsec: XsecStage = XsecStage()
    templates: Templates = Templates()
    mirroring: Mirroring = Mirroring()
    yields: YieldsStage = YieldsStage()
    galaxy: Galaxy = Galaxy()
    sky: Sky = Sky()
    comparisons: Comparisons = Comparisons()


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the quick preset for every key)"
        got = e.get("input")
        shown = "" if e["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{source}: {path}: {msg}{shown}")
    return "invalid configuration\n  " + "\n  ".join(lines)


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _preset_dict(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    text = resources.files("tasks").joinpath("presets", f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def _validate(data: Any, source: str) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_preset(name: str) -> Config:
    """Return the validated preset ``quick`` or ``paper``."""
    return _validate(_preset_dict(name), f"preset {name}")


def _unknown_key(source: str, key: str) -> ConfigError:
    return ConfigError(f"invalid configuration\n  {source}: {key}: unknown key (check the spelling; see the quick preset for every key)")


def with_overrides(config: Config, overrides: Mapping[str, Any], source: str = "override") -> Config:
    """A copy of ``config`` with dotted keys set, validated like a file.

    Parameters
    ----------
    config : Config
        The validated configuration to start from (it is not changed).
    overrides : mapping of str to value
        Dotted key paths (``"mirroring.f_B_high"``; ``"mirroring__f_B_high"`` is the same key) to
        their new values.  A mapping given for a section or a nested model (``{"xsec": {"chunk":
        8}}``) is merged into it; any other value replaces the key.
    source : str
        Names where the overrides come from in error messages (``--sweep mirroring.f_B_high=2``).

    Raises
    ------
    ConfigError
        For an unknown key or an invalid value; the message names the key path.
    """
    if not overrides:
        return config
    d = config.model_dump(mode="json")
    for key, value in overrides.items():
        path = key.replace("__", ".")
        target = d
        *head, last = path.split(".")
        for h in head:
            if not isinstance(target.get(h), dict):
                raise _unknown_key(source, path)
            target = target[h]
        if path == "preset":
            raise ConfigError(
                f"invalid configuration\n  {source}: preset: choose the preset with load_config(preset=...) or in the file, "
                "not as an override"
            )
        if last not in target:
            raise _unknown_key(source, path)
        if isinstance(value, Mapping) and isinstance(target[last], dict):
            target[last] = _deep_merge(target[last], dict(value))
        else:
            target[last] = value
    try:
        return Config.model_validate(d)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(path: str | Path | None = None, preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Load and validate a configuration.

    Parameters
    ----------
    path : path, optional
        A YAML file.  If it has a top-level ``preset:`` key, the file overrides that preset.
    preset : str, optional
        ``quick`` or ``paper``; used when no file is given (default ``quick``).
    overrides : mapping, optional
        Dotted keys set after the file is read (see :func:`with_overrides`).

    Raises
    ------
    ConfigError
        For an unreadable file, bad YAML, or any invalid key (the message names the key path).
    """
    config = _load_config(path, preset)
    if overrides:
        shown = ", ".join(f"{k.replace('__', '.')}={v!r}" for k, v in overrides.items())
        config = with_overrides(config, overrides, source=f"override {shown}")
    return config


def _load_config(path: str | Path | None, preset: str | None) -> Config:
    if path is None:
        return load_preset(preset or "quick")
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read configuration file {p}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    data = {} if data is None else data
    if isinstance(data, dict) and (data.get("preset") or preset):
        name = data.get("preset") or preset
        if not isinstance(name, str):
            raise ConfigError(f"{p}: preset: must be one of {', '.join(PRESETS)} (got {name!r})")
        data = _deep_merge(_preset_dict(name), data)
    return _validate(data, str(p))


#: Files a MESA ``LOGS/`` directory must hold (the ``profileN.data`` it lists are checked on read).
MESA_LOGS_FILES = ("history.data", "profiles.index")


def check_paths(config: Config, *, cluster: str | None = None, jobqueue: str | None = None) -> None:
    """Check every path the configuration names before any stage runs or anything is written.

    Parameters
    ----------
    config : Config
        The validated configuration.
    cluster : str, optional
        The cluster kind about to be used; the jobqueue file is checked only for ``slurm``.
    jobqueue : str, optional
        The jobqueue file given on the command line (else ``run.jobqueue``).

    Raises
    ------
    ConfigError
        Naming the key, the path and what is missing there.
    """
    problems = []
    if config.templates.source == "mesa":
        for i, logs in enumerate(config.templates.mesa_logs):
            p = Path(logs)
            where = f"templates.mesa_logs[{i}]"
            if not p.is_dir():
                problems.append(f"{where}: {logs} is not a directory (give the path of a MESA LOGS/ folder)")
                continue
            missing = [f for f in MESA_LOGS_FILES if not (p / f).is_file()]
            if missing:
                problems.append(f"{where}: {logs} has no {' or '.join(missing)} (is it a MESA LOGS/ folder?)")
    jq = jobqueue or config.run.jobqueue
    if cluster == "slurm" and jq is not None and not Path(jq).is_file():
        key = "--jobqueue" if jobqueue else "run.jobqueue"
        problems.append(f"{key}: jobqueue file {jq} does not exist (copy deployment/jobqueue.yaml and adapt it)")
    if problems:
        raise ConfigError("configuration names paths that cannot be used\n  " + "\n  ".join(problems))
