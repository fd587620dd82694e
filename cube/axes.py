"""The named axes every cube shares: scenarios, messengers, the per-model coordinates, energy.

The single place these names (and their units and descriptions) are written down: the stage
modules build their cubes and schemas from them, the kernels and catalogs index by them, and
the report reads them back. Adding a messenger (say per-flavour neutrinos) starts here.

Like the rest of :mod:`cube`, this module knows names and units only (no physics) and
imports nothing from ``tasks`` or ``catalogs``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from cube.schema import VarSpec

__all__ = [
    "SCENARIOS",
    "MESSENGERS",
    "MODEL_COORDS",
    "ENERGY",
    "SCENARIO",
    "MESSENGER",
    "MODEL",
    "MODEL_COORD_SPECS",
]

#: Cosmic-ray transport scenarios, in cube order: field-free and magnetic mirroring.
SCENARIOS: tuple[str, ...] = ("ballistic", "mirroring")

#: Secondary messengers, in cube order (nu: all flavours, neutrinos and antineutrinos).
MESSENGERS: tuple[str, ...] = ("gamma", "nu")

#: Per-model coordinates along ``model``, in the order of docs/design.md, then the validity
#: flag and its reason ("" when valid).
MODEL_COORDS: tuple[str, ...] = (
    "mass_init",
    "metallicity",
    "age",
    "stage",
    "duration",
    "R_star",
    "M_star",
    "L_star",
    "Teff",
    "source",
    "valid",
    "invalid_reason",
)

ENERGY = VarSpec(("energy",), "TeV", "secondary particle energy")
SCENARIO = VarSpec(("scenario",), "", "cosmic-ray transport scenario")
MESSENGER = VarSpec(("messenger",), "", "secondary messenger (nu = all flavours, nu + anti-nu)")
MODEL = VarSpec(("model",), "", "template index")

#: Units and descriptions of :data:`MODEL_COORDS`.
MODEL_COORD_SPECS: Mapping[str, VarSpec] = MappingProxyType(
    {
        "mass_init": VarSpec(("model",), "Msun", "initial stellar mass"),
        "metallicity": VarSpec(("model",), "1", "initial metal mass fraction Z"),
        "age": VarSpec(("model",), "yr", "stellar age of the snapshot"),
        "stage": VarSpec(("model",), "", "evolutionary stage (MS, RGB, CHeB, EAGB, TPAGB)"),
        "duration": VarSpec(("model",), "yr", "time span the snapshot stands for"),
        "R_star": VarSpec(("model",), "cm", "photospheric radius"),
        "M_star": VarSpec(("model",), "Msun", "current stellar mass"),
        "L_star": VarSpec(("model",), "Lsun", "luminosity"),
        "Teff": VarSpec(("model",), "K", "effective temperature"),
        "source": VarSpec(("model",), "", "where the model comes from (generator or a MESA LOGS path)"),
        "valid": VarSpec(
            ("model",), "", "the structure model has a solution (False: zero profiles and yields, no weight)"
        ),
        "invalid_reason": VarSpec(("model",), "", "why the model is not valid (empty when valid)"),
    }
)

assert tuple(MODEL_COORD_SPECS) == MODEL_COORDS  # noqa: S101 - one list of names, checked at import
