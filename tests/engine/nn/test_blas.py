"""The two BLAS kernels: in place, equal to NumPy, with a fallback for other layouts."""

from __future__ import annotations

import numpy as np
import pytest

from engine.nn.blas import RowAdder, axpy


def test_axpy_in_place_for_every_layout(rng):
    for y in (rng.standard_normal(6).astype(np.float32), rng.standard_normal((2, 3)),
              rng.standard_normal((3, 4))[:, ::2]):  # contiguous 1-D, 2-D, and a strided view
        x = rng.standard_normal(y.shape).astype(y.dtype)
        expected = y + 0.5 * x
        axpy(0.5, x.copy(), y)
        np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(5, 3), (1, 4), (6, 1)])
def test_row_adder_adds_a_vector_to_every_row_in_place(rng, dtype, shape):
    a = rng.standard_normal(shape).astype(dtype)
    v = rng.standard_normal(shape[1]).astype(dtype)
    expected_add, expected_sub = a + v, a - v
    rows = RowAdder(a)
    assert (rows.ger is None) == (dtype == np.float16)  # no BLAS for half precision: NumPy
    before = a.ctypes.data
    rows.add(v)
    np.testing.assert_array_equal(a, expected_add)  # 1 * v is exact: bitwise NumPy's result
    np.testing.assert_array_equal(rows.a, a)
    rows.subtract(v)
    rows.subtract(v)
    tol = 1e-2 if dtype == np.float16 else 1e-6
    np.testing.assert_allclose(a, expected_sub, rtol=tol, atol=tol)
    assert a.ctypes.data == before
