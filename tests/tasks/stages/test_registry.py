"""Stage declarations: one per stage, the run order derived from their inputs."""

import pytest

from cube.schema import SCHEMAS
from tasks.stages import ORDER, STAGES, UPSTREAM, Stage, run_order


def _stage(name, *inputs):
    return Stage(name=name, code_version="x/1", inputs=tuple(inputs), plan=lambda *a: None)


def test_every_stage_is_declared_once_with_its_schema_and_comes_after_its_inputs():
    assert set(STAGES) == set(SCHEMAS) == set(ORDER)
    for name, stage in STAGES.items():
        assert stage.name == name and UPSTREAM[name] == stage.inputs
        assert stage.chunk_dim == SCHEMAS[name].chunk_dim
        assert all(ORDER.index(i) < ORDER.index(name) for i in stage.inputs)
    assert ORDER == ("xsec", "templates", "yields", "population", "emissivity", "sky", "sed")


def test_the_run_order_is_a_topological_sort_and_a_cycle_is_an_error():
    # declared out of order: the sort still puts inputs first, ties keep the declaration order
    stages = [_stage("c", "a", "b"), _stage("b", "a"), _stage("a"), _stage("d", "a")]
    assert run_order(stages) == ("a", "b", "c", "d")
    with pytest.raises(ValueError, match="cycle"):
        run_order([_stage("a", "b"), _stage("b", "a")])
    with pytest.raises(ValueError, match="undeclared"):
        run_order([_stage("a", "zz")])
