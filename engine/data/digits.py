"""Handwritten digits: 1,797 images of 8x8 pixels (values 0..16), 10 classes, shipped offline.

`digits.npz` beside this module holds `images` (1797, 8, 8) uint8 and `labels` (1797,) uint8. It
was produced once by `scripts/make_digits.py` from scikit-learn 1.9.1's bundled copy of the UCI
"Optical Recognition of Handwritten Digits" test set (Alpaydin and Kaynak, CC BY 4.0); the engine
does not need scikit-learn. The arrays' sha256 is checked on load, so a damaged file is an error,
not a silently different dataset.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

DIGITS_PATH = Path(__file__).with_name("digits.npz")
DIGITS_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"
N_DIGITS = 1797
FEATURE_NAMES: tuple[str, ...] = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


@lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    with np.load(DIGITS_PATH, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    if digest != DIGITS_SHA256 or images.shape != (N_DIGITS, 8, 8):
        raise ValueError(
            f"{DIGITS_PATH} is damaged: array sha256 {digest}, expected {DIGITS_SHA256}; "
            "regenerate it with scripts/make_digits.py"
        )
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """The raw images (1797, 8, 8) uint8 in 0..16 and labels (1797,) uint8, read-only, cached."""
    return _load()


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """X (1797, 64) float64 (pixel rows flattened, values 0..16) and y (1797,) int64 in 0..9."""
    images, labels = _load()
    return images.reshape(N_DIGITS, 64).astype(np.float64), labels.astype(np.int64)
