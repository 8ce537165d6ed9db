"""How fast the synthetic benchmark set is made: 60,000 x 784 float32, 10 classes.

Run from the repository root:

    .venv/bin/python benchmarks/synthetic_data.py

Prints the median of 5 (after a warm-up) for ``make_synthetic(60_000, 784, 10, 0.1)`` beside a
reference measured in the same run: drawing the same number of float32 normals with NumPy
(the floor: the set cannot be made faster than its noise is drawn). Target: within 2x the
reference (about 0.5 s on an idle core).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.data.synthetic import make_synthetic  # noqa: E402

N, D, C, REPEATS = 60_000, 784, 10, 5


def _median_seconds(fn) -> float:
    fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ours = _median_seconds(lambda: make_synthetic(N, D, C, 0.1, np.random.default_rng(0)))
    ref = _median_seconds(
        lambda: np.random.default_rng(0).standard_normal((N, D), dtype=np.float32))
    print(f"make_synthetic({N}, {D}, {C}): {ours:.3f} s   reference (normals only): {ref:.3f} s"
          f"   ratio {ours / ref:.1f}x")
    # judged against the reference, not the wall clock: this machine's load moves both alike
    print(("PASS" if ours < 2.0 * ref else "FAIL") + f": within 2x the reference "
          f"({ours / ref:.1f}x; {ours:.2f} s, under 3 s on an idle core)")


if __name__ == "__main__":
    main()
