"""Fixtures for engine.data tests: small CSV texts (the seeded `rng` is in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def fruit_csv() -> str:
    """A valid CSV with string labels in the middle column, 3 classes of 4 rows."""
    lines = ["weight,colour,sweetness"]
    rows = [
        (150.0, "apple", 6.5),
        (120.5, "pear", 7.0),
        (118.0, "banana", 9.0),
        (160.0, "apple", 5.5),
        (130.0, "pear", 6.8),
        (121.0, "banana", 8.5),
        (155.0, "apple", 6.0),
        (128.0, "pear", 7.2),
        (119.0, "banana", 9.5),
        (149.0, "apple", 6.1),
        (125.0, "pear", 7.1),
        (117.0, "banana", 9.1),
    ]
    lines += [f"{w},{label},{s}" for w, label, s in rows]
    return "\n".join(lines) + "\n"
