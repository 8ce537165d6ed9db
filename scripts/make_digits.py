"""Produce engine/data/digits.npz from scikit-learn's bundled copy of the UCI digits.

Run once, by hand; the result is committed so the engine never needs scikit-learn:

    python3 -m pip install --target /tmp/skl scikit-learn==1.9.1   # NOT into the project venv
    .venv/bin/python scripts/make_digits.py /tmp/skl/sklearn/datasets/data/digits.csv.gz

Source: "Optical Recognition of Handwritten Digits" (E. Alpaydin, C. Kaynak, UCI Machine Learning
Repository, CC BY 4.0), the 1,797-image test set as shipped by scikit-learn: each line holds 64
pixel counts (0..16, an 8x8 image row by row) and the digit. The output holds `images` (1797, 8, 8)
uint8 and `labels` (1797,) uint8, compressed (about 45 KB). The script prints the sha256 of the
array bytes, which `engine/data/digits.py` checks on load (DIGITS_SHA256).
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "engine" / "data" / "digits.npz"


def main(source: str) -> None:
    with gzip.open(source, "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65):
        raise SystemExit(f"expected 1797 rows of 65 values in {source}, got {table.shape}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or set(labels.tolist()) != set(range(10)):
        raise SystemExit("unexpected values: pixels must be 0..16 and labels 0..9")
    images = pixels.reshape(-1, 8, 8).astype(np.uint8)
    labels = labels.astype(np.uint8)
    np.savez_compressed(OUT, images=images, labels=labels)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); array sha256 {digest}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
