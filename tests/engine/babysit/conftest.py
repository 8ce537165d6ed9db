"""Tiny sessions: 200 moons points, a 16-16 net, a temporary database."""

from __future__ import annotations

import numpy as np
import pytest

from engine.storage.db import connect

DATASET = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}
MODEL = {"hidden": [16, 16]}
CONFIG = {"learning_rate": 0.01, "batch_size": 32}


@pytest.fixture
def conn(db_path):
    connection = connect(db_path)
    yield connection
    connection.close()


@pytest.fixture
def make_session(conn):
    """Factory: a new session on tiny moons; keyword arguments override the defaults."""
    from engine import babysit

    def make(**overrides):
        kwargs = {"name": "tiny", "model": MODEL, "dataset": DATASET, "config": CONFIG, "seed": 0}
        kwargs.update(overrides)
        return babysit.new_session(conn, **kwargs)

    return make


def assert_states_equal(a, b) -> None:
    """Bitwise equality of two TrainStates' arrays, RNG state and epoch."""
    assert a.epoch == b.epoch
    for name in ("params", "buffers", "opt_state"):
        da, db = getattr(a, name), getattr(b, name)
        assert da.keys() == db.keys(), name
        for key in da:
            xa, xb = np.asarray(da[key]), np.asarray(db[key])
            assert xa.dtype == xb.dtype and xa.shape == xb.shape, (name, key)
            assert xa.tobytes() == xb.tobytes(), (name, key)
    assert a.rng_state == b.rng_state
