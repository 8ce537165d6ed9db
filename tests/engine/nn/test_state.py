"""TrainState checkpoints: bitwise round trips, deterministic bytes, clear errors."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.nn import (
    ModelSpec,
    TrainConfig,
    new_state,
    sha256_hex,
    state_from_bytes,
    state_to_bytes,
    train_segment,
)
from tests.engine.nn.checks import assert_states_equal


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_inputs=st.integers(1, 6),
    hidden=st.lists(st.integers(1, 7), max_size=3),
    n_classes=st.integers(2, 5),
    batch_norm=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**63),
)
def test_new_state_round_trip_is_bitwise(n_inputs, hidden, n_classes, batch_norm, dtype, seed):
    spec = ModelSpec(n_inputs, tuple(hidden), n_classes, batch_norm=batch_norm, dtype=dtype)
    state = new_state(spec, seed)
    blob = state_to_bytes(state)
    back = state_from_bytes(blob)
    assert_states_equal(state, back)
    assert state_to_bytes(back) == blob  # deterministic bytes, so equal states hash equal


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop", "adam"])
def test_trained_state_round_trip_is_bitwise(tiny_data, optimizer):
    state = new_state(ModelSpec(5, (6, 4), 3), 3)
    result = train_segment(state, TrainConfig(optimizer=optimizer, dropout=0.2), tiny_data, 2)
    blob = state_to_bytes(result.state)
    back = state_from_bytes(blob)
    assert_states_equal(result.state, back)
    assert back.epoch == 2 and len(back.history) == 2
    assert int(back.opt_state["step"]) == 4  # 70 rows at batch 64: 2 steps an epoch
    assert sha256_hex(blob) == sha256_hex(state_to_bytes(back))
    assert len(sha256_hex(blob)) == 64


def test_new_state_is_deterministic_and_seeded():
    spec = ModelSpec(3, (4,), 2)
    a, b, c = new_state(spec, 1), new_state(spec, 1), new_state(spec, 2)
    assert_states_equal(a, b)
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    assert a.epoch == 0 and a.history == [] and int(a.opt_state["step"]) == 0
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        new_state(spec, -1)


def _rewrite(blob: bytes, drop: str = "", replace: dict | None = None) -> bytes:
    """The archive with one entry dropped or replaced (for corrupt-checkpoint tests)."""
    src = zipfile.ZipFile(io.BytesIO(blob))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            name = info.filename
            if name == drop:
                continue
            data = src.read(name)
            if replace and name in replace:
                buf = io.BytesIO()
                np.save(buf, replace[name])
                data = buf.getvalue()
            dst.writestr(name, data)
    return out.getvalue()


def test_corrupt_checkpoints_are_refused_with_a_reason():
    blob = state_to_bytes(new_state(ModelSpec(3, (4,), 3), 0))
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        state_from_bytes(b"not a zip")
    with pytest.raises(ValueError, match="no meta.json"):
        state_from_bytes(_rewrite(blob, drop="meta.json.npy"))
    with pytest.raises(ValueError, match=r"checkpoint params are .*'W1'.* needs"):
        state_from_bytes(_rewrite(blob, drop="params/W2.npy"))
    wrong = {"params/W1.npy": np.zeros((4, 4), np.float32)}
    with pytest.raises(ValueError, match=r"params/W1 is float32\[4, 4\], expected float32\[3, 4\]"):
        state_from_bytes(_rewrite(blob, replace=wrong))
    objects = {"params/W1.npy": np.array([None] * 12, dtype=object).reshape(3, 4)}
    with pytest.raises(ValueError):  # object arrays need pickle, which is refused
        state_from_bytes(_rewrite(blob, replace=objects))



def test_entries_in_fortran_order_or_sharing_a_header_read_back_their_own_values():
    state = new_state(ModelSpec(3, (4,), 3), 0)
    w1 = state.params["W1"]
    blob = _rewrite(state_to_bytes(state), replace={"params/W1.npy": np.asfortranarray(w1)})
    assert np.array_equal(state_from_bytes(blob).params["W1"], w1)
    other = new_state(ModelSpec(3, (4,), 3), 1)  # the same headers, other values
    back = state_from_bytes(state_to_bytes(other)).params["W1"]
    assert np.array_equal(back, other.params["W1"]) and not np.array_equal(back, w1)
    back[0, 0] = 7.0  # a loaded array is the caller's own, writable
    assert state_from_bytes(state_to_bytes(other)).params["W1"][0, 0] != 7.0


def test_checkpoint_entries_are_the_npy_files_numpy_writes():
    state = new_state(ModelSpec(3, (4,), 3, batch_norm=True), 0)
    state.opt_state["w_t"] = np.asfortranarray(np.arange(6.0).reshape(2, 3))  # any layout
    with zipfile.ZipFile(io.BytesIO(state_to_bytes(state))) as zf:
        for name in ("params/W1", "buffers/running_mean1", "opt/step", "opt/w_t"):
            group, _, key = name.partition("/")
            arrays = {"params": state.params, "buffers": state.buffers, "opt": state.opt_state}
            reference = io.BytesIO()
            np.lib.format.write_array(reference, arrays[group][key].copy(order="C"))
            assert zf.read(f"{name}.npy") == reference.getvalue(), name


def test_checkpoint_without_history_is_smaller_and_resumes_the_same(tiny_data):
    state = train_segment(new_state(ModelSpec(5, (6,), 3), 0), TrainConfig(), tiny_data, 3).state
    full, lean = state_to_bytes(state), state_to_bytes(state, history=False)
    back = state_from_bytes(lean)
    assert back.history == [] and len(state.history) == 3 and len(lean) < len(full)
    assert_states_equal(state_from_bytes(full), state)
    for name, value in state.params.items():
        assert np.array_equal(back.params[name], value)
    assert back.rng_state == state.rng_state and back.epoch == state.epoch


def _npy(header: dict, data: bytes) -> bytes:
    """A hand-made .npy entry: any header, any payload (forged checkpoints)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + data


def _with_entry(blob: bytes, name: str, data: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(blob))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, data if info.filename == name else src.read(info))
    return out.getvalue()


def test_forged_or_truncated_checkpoints_raise_the_loaders_value_error():
    blob = state_to_bytes(new_state(ModelSpec(3, (4,), 3), 0))
    huge = _npy({"descr": "<f4", "fortran_order": False, "shape": (10**7, 10**6)}, b"\0" * 48)
    with pytest.raises(ValueError, match=r"params/W1.*declares float32\[10000000, 1000000\]"):
        state_from_bytes(_with_entry(blob, "params/W1.npy", huge))  # was MemoryError
    short = _npy({"descr": "<f4", "fortran_order": False, "shape": (3, 4)}, b"\0" * 20)
    with pytest.raises(ValueError, match=r"params/W1.*\(48 bytes\) but holds 20 bytes"):
        state_from_bytes(_with_entry(blob, "params/W1.npy", short))  # was EOFError
    as_list = np.frombuffer(b"[1, 2]", np.uint8)
    with pytest.raises(ValueError, match="meta.json must be a JSON object, got list"):
        state_from_bytes(_rewrite(blob, replace={"meta.json.npy": as_list}))  # AttributeError
    no_spec = np.frombuffer(json.dumps({"format": 1, "epoch": 0}).encode(), np.uint8)
    with pytest.raises(ValueError, match="meta.json lacks spec, rng_state, history"):
        state_from_bytes(_rewrite(blob, replace={"meta.json.npy": no_spec}))  # was KeyError
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        state_from_bytes(blob[: len(blob) // 2])


@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255), st.booleans()),
                      min_size=1, max_size=4))
def test_damaged_checkpoint_bytes_load_or_raise_value_error_only(edits):
    blob = bytearray(_SMALL_BLOB)
    for where, value, cut in edits:
        j = int(where * (len(blob) - 1))
        if cut:
            del blob[j:]
            if not blob:
                break
        else:
            blob[j] = value
    try:
        state_from_bytes(bytes(blob))
    except ValueError:
        pass


_SMALL_BLOB = state_to_bytes(new_state(ModelSpec(3, (4,), 3), 0))
