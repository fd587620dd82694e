"""Stage declarations: one per stage module, found by the package; the run order derived from their inputs."""

import pickle
import subprocess
import sys
from dataclasses import dataclass, fields

import pytest

from cube.schema import SCHEMAS, GroupSchema
from tasks.stages import ORDER, STAGES, UPSTREAM, Stage, run_order


@dataclass(frozen=True)
class _Payload:
    pass


def _stage(name, *inputs, rank=0):
    schema = GroupSchema(name=name, dims=("x",), chunk_dim="x", data_vars={}, coords={})
    return Stage(
        name=name,
        code_version="x/1",
        inputs=tuple(inputs),
        schema=schema,
        payload=_Payload,
        compute=lambda *a: None,
        plan=lambda *a: None,
        rank=rank,
    )


def test_every_stage_is_declared_once_with_its_schema_and_comes_after_its_inputs():
    assert set(STAGES) == set(SCHEMAS) == set(ORDER)
    for name, stage in STAGES.items():
        assert stage.name == name and UPSTREAM[name] == stage.inputs
        assert SCHEMAS[name] is stage.schema and stage.chunk_dim == stage.schema.chunk_dim
        assert all(ORDER.index(i) < ORDER.index(name) for i in stage.inputs)
    assert ORDER == ("xsec", "templates", "yields", "population", "emissivity", "sky", "sed")


def test_every_payload_is_a_frozen_dataclass_that_pickles():
    for stage in STAGES.values():
        assert stage.payload.__dataclass_params__.frozen
        assert pickle.loads(pickle.dumps(stage.payload)) is stage.payload
        assert [f.name for f in fields(stage.payload)]


def test_a_stage_declares_its_own_group_and_a_typed_payload():
    with pytest.raises(ValueError, match="schema of group"):
        Stage(name="a", code_version="x", inputs=(), schema=_stage("b").schema, payload=_Payload,
              compute=print, plan=print)
    with pytest.raises(TypeError, match="frozen dataclass"):
        Stage(name="a", code_version="x", inputs=(), schema=_stage("a").schema, payload=dict,
              compute=print, plan=print)


def test_the_run_order_is_a_topological_sort_and_a_cycle_is_an_error():
    # declared out of order: the sort still puts inputs first, ties keep the declaration order
    stages = [_stage("c", "a", "b"), _stage("b", "a"), _stage("a"), _stage("d", "a")]
    assert run_order(stages) == ("a", "b", "c", "d")
    # the rank orders stages the inputs leave unordered
    assert run_order([_stage("a"), _stage("b", rank=-1)]) == ("b", "a")
    with pytest.raises(ValueError, match="cycle"):
        run_order([_stage("a", "b"), _stage("b", "a")])
    with pytest.raises(ValueError, match="undeclared"):
        run_order([_stage("a", "zz")])


def test_the_cube_layer_imports_nothing_from_the_pipeline():
    code = "import sys, cube, cube.axes, cube.schema, cube.store, cube.fingerprint; " \
           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tasks', 'catalogs')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
