"""Assertions shared by the engine.nn tests."""

from __future__ import annotations

from engine.nn.state import TrainState


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def assert_states_equal(a: TrainState, b: TrainState, *, same_timing: bool = True) -> None:
    """Bitwise equality of everything a state holds (epoch timings only if ``same_timing``)."""
    assert a.spec == b.spec and a.epoch == b.epoch
    assert a.rng_state == b.rng_state
    if same_timing:
        assert a.history == b.history
    else:
        assert without_seconds(a.history) == without_seconds(b.history)
    for x, y in ((a.params, b.params), (a.buffers, b.buffers), (a.opt_state, b.opt_state)):
        assert set(x) == set(y)
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
            assert x[k].tobytes() == y[k].tobytes(), k
