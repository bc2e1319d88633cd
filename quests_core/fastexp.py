"""A vectorisable exp for sums of Gaussian kernel terms.

numba lowers np.exp to a scalar libm call unless llvmlite carries Intel's SVML, which the
PyPI wheels do not. The kernel sums spend most of their time in exp, so this module writes
exp(x), x <= 0, as simple array passes LLVM turns into SIMD code: x = n ln2 + r with
|r| <= ln2/2, exp(r) from its degree-13 Taylor polynomial (truncation < 1e-17), and 2^n
built from its IEEE-754 bits. Accuracy is a few ulp. Arguments below -708 are clamped
there: callers subtract the largest term first, so their sums are >= 1 and terms below
1e-307 cannot change them.
"""

import numba as nb
import numpy as np

from ._numba import JIT

# The rounding trick needs (a + MAGIC) - MAGIC evaluated as written: no 'reassoc' here.
EXACT_ORDER_JIT = dict(JIT, fastmath={"contract"})

LOG2_E = 1.4426950408889634
LN2_HIGH = 0.6931471803691238  # ln 2 split so that n * LN2_HIGH is exact for |n| < 2^11
LN2_LOW = 1.9082149292705877e-10
ROUNDING_MAGIC = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits
SMALLEST_ARGUMENT = -708.0
TAYLOR_COEFFICIENTS = tuple(1.0 / np.prod(np.arange(1.0, m + 1.0)) for m in range(14))[::-1]


@nb.njit(**EXACT_ORDER_JIT)
def _exp_sum(arguments, n_values, scratch, bits):
    """sum_j exp(arguments[j]) for j < n_values, all arguments <= 0.

    scratch (float64) and bits (int64) hold at least n_values entries and are overwritten.
    """
    magic_bits = np.int64(4843621399236968448)  # the bit pattern of ROUNDING_MAGIC
    c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2, c1, c0 = TAYLOR_COEFFICIENTS
    for j in range(n_values):
        x = max(arguments[j], SMALLEST_ARGUMENT)
        shifted = x * LOG2_E + ROUNDING_MAGIC
        n = shifted - ROUNDING_MAGIC
        r = (x - n * LN2_HIGH) - n * LN2_LOW
        p = c13
        p = p * r + c12
        p = p * r + c11
        p = p * r + c10
        p = p * r + c9
        p = p * r + c8
        p = p * r + c7
        p = p * r + c6
        p = p * r + c5
        p = p * r + c4
        p = p * r + c3
        p = p * r + c2
        p = p * r + c1
        p = p * r + c0
        arguments[j] = p
        scratch[j] = shifted
    shifted_bits = scratch[:n_values].view(np.int64)
    for j in range(n_values):
        bits[j] = (shifted_bits[j] - magic_bits + 1023) << 52
    return _dot(arguments, bits[:n_values].view(np.float64), n_values)


@nb.njit(**JIT)
def _dot(a, b, n_values):
    total = 0.0
    for j in range(n_values):
        total += a[j] * b[j]
    return total
