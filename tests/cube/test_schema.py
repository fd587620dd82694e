import numpy as np
import pytest
import xarray as xr

from cube.schema import SCHEMA_ATTR, SCHEMAS, GroupSchema, SchemaError, apply_metadata, get_schema, validate
from tasks.stages.xsec import SCHEMA as XSEC  # registers every stage's schema (tasks.stages)


def _xsec(dims=("E_p", "energy", "messenger")):
    ds = xr.Dataset(
        {
            "dsigma_dE": (dims, np.zeros((3, 4, 2))),
            "sigma_inel": (("E_p",), np.ones(3)),
        },
        coords={"E_p": [1.0, 2.0, 3.0], "energy": [1.0, 2.0, 3.0, 4.0], "messenger": ["gamma", "nu"]},
        attrs={"config": {}, "code_version": "x"},
    )
    return apply_metadata(ds, "xsec")


def test_every_design_group_is_described():
    assert set(SCHEMAS) == {"xsec", "templates", "yields", "population", "emissivity", "sky", "sed"}
    assert SCHEMAS["yields"].data_vars["luminosity"].units == "TeV^-1 s^-1"
    assert SCHEMAS["sky"].data_vars["intensity"].dims == ("pixel", "scenario", "messenger", "energy")


def test_valid_dataset_passes():
    validate(_xsec(), "xsec")


def test_wrong_unit_is_caught():
    ds = _xsec()
    ds["sigma_inel"].attrs["units"] = "cm^2"
    with pytest.raises(SchemaError, match="'sigma_inel' has units 'cm\\^2', expected 'mb'"):
        validate(ds, "xsec")


def test_wrong_dim_order_is_caught():
    ds = _xsec().transpose("energy", "E_p", "messenger")
    with pytest.raises(SchemaError, match="'dsigma_dE' has dims"):
        validate(ds, "xsec")


def test_missing_variable_and_attrs_are_caught():
    ds = _xsec().drop_vars("sigma_inel")
    ds.attrs = {}
    with pytest.raises(SchemaError) as e:
        validate(ds, "xsec")
    assert "'sigma_inel' is missing" in str(e.value)
    assert "'config' is missing" in str(e.value)


def test_unknown_group():
    with pytest.raises(SchemaError, match="unknown cube group 'nope'"):
        validate(_xsec(), "nope")


def test_a_group_carries_its_schema_for_processes_that_did_not_register_it():
    assert GroupSchema.from_dict(XSEC.as_dict()) == XSEC
    renamed = GroupSchema.from_dict({**XSEC.as_dict(), "name": "xsec_copy"})
    ds = _xsec()
    ds.attrs[SCHEMA_ATTR] = renamed.as_dict()
    assert get_schema("xsec_copy", ds) == renamed
    validate(ds, "xsec_copy")
    with pytest.raises(SchemaError, match="unknown cube group 'xsec_copy'"):
        get_schema("xsec_copy")
