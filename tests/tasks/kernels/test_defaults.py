"""A kernel keyword the configuration sets has no default that could disagree with it."""

import importlib
import inspect
import pkgutil

import tasks.kernels
from tasks.config import Config
from tasks.stages.yields import kernel_arguments

#: Kernel keywords the configuration sets, beyond those of the yields stage's kernel call
#: (:func:`tasks.stages.yields.kernel_arguments`), with their configuration default.
_CFG = Config()
_EXTRA = {
    "X": _CFG.interactions.hydrogen_fraction,
    "norm": _CFG.mirroring.hawc_norm,
    "index": _CFG.mirroring.hawc_index,
    "pivot": _CFG.mirroring.hawc_pivot,
    "depth_min": _CFG.yields.impact_depth_min,
    "age_index": -_CFG.mirroring.spindown_index,
}

#: Keywords whose meaning differs between kernels (a function's own physical constant, not a
#: setting): name -> the functions where the name is the configured setting.
_ONLY_IN = {
    "index": ("hawc_flux", "hawc_calibration_factor"),
    "norm": ("hawc_flux", "hawc_calibration_factor"),
    # the chords' n_gauss counts nodes per radial shell of a chord, not of a trajectory segment
    "n_gauss": ("template_luminosity", "mirror_efficiency", "trajectory_efficiencies"),
}


def _configured() -> dict:
    args = kernel_arguments(_CFG)
    out = {k: v for k, v in args.items() if not isinstance(v, dict)}
    out["u_min"], out["u_max"] = args.pop("u_min"), args.pop("u_max")
    for part in args["surface"].values():
        out.update({k: v for k, v in part.items() if not isinstance(v, list)})
    out.pop("calibration_applies_to", None)
    return {**out, **_EXTRA}


def _public_functions():
    for info in pkgutil.iter_modules(tasks.kernels.__path__):
        mod = importlib.import_module(f"tasks.kernels.{info.name}")
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"{info.name}.{name}", obj


def test_no_kernel_default_disagrees_with_the_configuration():
    configured = _configured()
    checked, wrong = 0, []
    for qual, fn in _public_functions():
        for p in inspect.signature(fn).parameters.values():
            numeric = isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
            if p.name not in configured or not numeric:
                continue
            if p.name in _ONLY_IN and fn.__name__ not in _ONLY_IN[p.name]:
                continue
            checked += 1
            if p.default != configured[p.name]:
                wrong.append(f"{qual}({p.name}={p.default!r}), configuration {configured[p.name]!r}")
    assert not wrong, "kernel defaults that differ from the configuration: " + "; ".join(wrong)
    assert checked > 5  # the check does look at the kernels


def test_the_quadrature_comes_from_the_configuration_only():
    from tasks.kernels.luminosity import template_luminosity
    from tasks.kernels.mirroring import mirror_efficiency

    for fn in (template_luminosity, mirror_efficiency):
        params = inspect.signature(fn).parameters
        for name in ("n_mu_b", "n_gamma", "n_gauss", "saturation", "node_tol", "dark_column", "u_max", "u_min"):
            assert params[name].default is inspect.Parameter.empty, f"{fn.__name__}({name}) has a default"
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
