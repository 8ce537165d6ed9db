"""Fixtures shared by every test: a seeded generator and a temporary database."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    """A fresh database file, also exported as $PANDA_CAVIAR_DB for code that reads the default."""
    path = tmp_path / "test.db"
    monkeypatch.setenv("PANDA_CAVIAR_DB", str(path))
    return path
