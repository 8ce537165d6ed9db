"""engine.nn.size: a model's size from its shapes, refused before anything is allocated."""

from __future__ import annotations

import pytest

from engine.nn import ModelSpec, new_state
from engine.nn.size import MAX_PARAMS, check_size, model_size


def test_size_counts_the_arrays_a_model_really_has():
    spec = ModelSpec(n_inputs=5, hidden=(7, 3), n_classes=4)
    state = new_state(spec, 0)
    params = sum(p.size for p in state.params.values())
    buffers = sum(b.size for b in state.buffers.values())
    size = model_size(spec, 32, "adam")
    assert size["params"] == params
    assert size["checkpoint_bytes"] == (3 * params + buffers) * 4  # float32, Adam's m and v
    assert model_size(spec, 32, "sgd")["checkpoint_bytes"] == (params + buffers) * 4
    assert model_size(spec, 64)["batch_bytes"] == 2 * size["batch_bytes"]


def test_the_issues_model_is_refused_with_the_limit_and_the_size():
    spec = ModelSpec(n_inputs=2, hidden=(4096,) * 7, n_classes=2)
    with pytest.raises(ValueError) as err:
        check_size(spec, 64)
    text = str(err.value)
    assert f"the limit is {MAX_PARAMS:,}" in text
    assert f"{model_size(spec, 64)['params']:,} parameters asked for" in text


def test_a_huge_batch_is_refused_by_its_memory():
    spec = ModelSpec(n_inputs=784, hidden=(1024, 1024), n_classes=10)
    check_size(spec, 64)
    with pytest.raises(ValueError,
                       match=r"batch too large: about [\d,]+ MB .* the limit is 512 MB"):
        check_size(spec, 100_000)
