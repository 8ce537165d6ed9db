"""Two BLAS kernels NumPy lacks, for the training step: y += a x in one pass (``axpy``), and
adding a vector to every row of a matrix in place (``RowAdder``, BLAS ``ger``).

Both fall back to NumPy for layouts or dtypes BLAS cannot take in place. SciPy's BLAS is
imported with this module, not on first use: a thread limit set before the first step
(threadpoolctl) only reaches the BLAS libraries loaded by then.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

_AXPY = {np.dtype(np.float32): blas.saxpy, np.dtype(np.float64): blas.daxpy}
_GER = {np.dtype(np.float32): blas.sger, np.dtype(np.float64): blas.dger}


def axpy(a: float, x: np.ndarray, y: np.ndarray) -> None:
    """y += a * x in place; x may be overwritten.

    One pass of BLAS ``axpy`` for contiguous float arrays (instead of two NumPy passes), which
    matters when an update rule runs over every parameter at once.
    """
    f = _AXPY.get(y.dtype)
    if f is not None and x.dtype == y.dtype and x.flags.c_contiguous and y.flags.c_contiguous:
        if y.ndim != 1:
            x, y = x.reshape(-1), y.reshape(-1)  # views; f2py would copy a 2-D array
        f(x, y, a=a)
    else:
        np.multiply(x, a, out=x)
        np.add(y, x, out=y)


class RowAdder:
    """Add (or subtract) a vector (D,) to every row of one fixed array ``a`` (N, D), in place.

    A rank-one update a += alpha 1 v^T on the transpose (column-major for BLAS): one pass,
    about twice as fast as NumPy's broadcasting ufunc, which also allocates an iterator buffer.
    """

    def __init__(self, a: np.ndarray) -> None:
        self.a, self.a_T = a, a.T
        self.ones = np.ones(a.shape[0], a.dtype)
        self.ger = _GER.get(a.dtype) if a.ndim == 2 and a.flags.c_contiguous else None
        if self.ger is not None and a.size:  # make sure f2py works in place, not on a copy
            probe = a[0, 0]
            out = self.ger(0.0, np.zeros(a.shape[1], a.dtype), self.ones, a=self.a_T,
                           overwrite_a=1)
            if out is not self.a_T and not np.shares_memory(out, a):
                self.ger = None
            a[0, 0] = probe

    def add(self, v: np.ndarray) -> None:
        """a += v (v contiguous, shape (D,))."""
        if self.ger is not None:
            self.ger(1.0, v, self.ones, a=self.a_T, overwrite_a=1)
        else:
            np.add(self.a, v, out=self.a)

    def subtract(self, v: np.ndarray) -> None:
        """a -= v (v contiguous, shape (D,))."""
        if self.ger is not None:
            self.ger(-1.0, v, self.ones, a=self.a_T, overwrite_a=1)
        else:
            np.subtract(self.a, v, out=self.a)
