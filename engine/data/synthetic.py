"""A large synthetic classification set for benchmarks (e.g. 60,000 x 784, like MNIST's size).

Each class is a mixture of a few Gaussian clusters in a random low-dimensional subspace, embedded
in `n_features` dimensions, plus isotropic noise in every dimension:

    z = centroid[class, cluster] + N(0, I_k)       # (k,) latent point, k = min(n_features, 16)
    x = z @ Q.T + noise * N(0, I_D)                # (D,) with Q (D, k) orthonormal columns

Several clusters per class make the classes not linearly separable, so a hidden layer pays off;
`noise` also blurs the latent clusters (its part inside the subspace) and hides the signal among
D - k noise-only directions. Generation is vectorised in float32: 60,000 x 784 takes a fraction
of a second.
"""

from __future__ import annotations

import numpy as np

LATENT_DIM = 16
CLUSTERS_PER_CLASS = 3
CENTROID_SCALE = 1.2  # spread of cluster centres in latent units (within-cluster std is 1)
_CHUNK_ROWS = 8192  # noise is drawn in blocks of rows to keep one big temporary off the heap


def make_synthetic(
    n_samples: int,
    n_features: int,
    n_classes: int,
    noise: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Return X (n_samples, n_features) float32 and y (n_samples,) int64 with balanced classes.

    Rows come shuffled (labels are drawn as a random permutation of balanced counts).
    """
    k = min(n_features, LATENT_DIM)
    q, _ = np.linalg.qr(rng.standard_normal((n_features, k)))  # (D, k) orthonormal columns
    basis_t = np.ascontiguousarray(q.T, dtype=np.float32)  # (k, D)
    centroids = CENTROID_SCALE * rng.standard_normal(
        (n_classes * CLUSTERS_PER_CLASS, k), dtype=np.float32
    )  # (C * m, k)

    y = np.arange(n_samples, dtype=np.int64) % n_classes
    y = y[rng.permutation(n_samples)]  # (N,) balanced, shuffled
    cluster = rng.integers(0, CLUSTERS_PER_CLASS, size=n_samples)
    z = centroids[y * CLUSTERS_PER_CLASS + cluster]  # (N, k)
    z += rng.standard_normal(z.shape, dtype=np.float32)

    X = z @ basis_t  # (N, D) float32
    if noise > 0:
        buf = np.empty((min(_CHUNK_ROWS, n_samples), n_features), dtype=np.float32)
        for start in range(0, n_samples, _CHUNK_ROWS):
            block = X[start : start + _CHUNK_ROWS]
            eps = buf[: len(block)]
            rng.standard_normal(out=eps, dtype=np.float32)
            eps *= np.float32(noise)
            block += eps
    return X, y
