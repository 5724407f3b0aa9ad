"""exp and log written so that LLVM vectorises loops that call them (private).

Numba's ``np.exp`` / ``np.log`` call scalar libm (the pip llvmlite has no SVML),
which keeps the soft-DTW loops scalar.  These versions are branch-free: range
reduction, a polynomial, and a bit cast for the power of two, all of which map
to SIMD instructions.  Accuracy is within a few ulp over the ranges soft-DTW
uses (``exp`` of non-positive arguments, ``log`` of values in [1, 3]), checked
against numpy in the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that n * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10
LN2 = 0.6931471805599453
EXP_UNDERFLOW = -708.0  # below this exp(x) is under the smallest normal: return 0


@intrinsic
def _int64_as_float64(typingctx, bits):
    """Reinterpret the bits of an int64 as a float64 (a free register move)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@njit(cache=True, nogil=True, inline="always")
def vexp(x):
    """exp(x) for x <= ~0 (soft-min weights); exact 0 below -708, 1 at 0."""
    low = x < EXP_UNDERFLOW
    x = EXP_UNDERFLOW if low else x
    n = np.floor(x * LOG2E + 0.5)
    r = (x - n * LN2_HI) - n * LN2_LO  # |r| <= ln(2) / 2
    # Taylor series to degree 13: the truncation error is below 1e-17 on |r| <= 0.347
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _int64_as_float64((np.int64(n) + 1023) << 52)
    return 0.0 if low else p * scale


@njit(cache=True, nogil=True, inline="always")
def vlog_1_to_3(s):
    """log(s) for s in [1, 3] (a sum of three soft-min weights, the largest of them 1)."""
    big = s > 1.5
    s = s * 0.5 if big else s  # now in [0.75, 1.5]
    z = (s - 1.0) / (s + 1.0)  # |z| <= 0.2
    z2 = z * z
    # log(s) = 2 atanh(z) = 2 (z + z^3/3 + z^5/5 + ...); z^2 <= 0.04, 12 terms
    p = 1.0 / 23.0
    p = p * z2 + 1.0 / 21.0
    p = p * z2 + 1.0 / 19.0
    p = p * z2 + 1.0 / 17.0
    p = p * z2 + 1.0 / 15.0
    p = p * z2 + 1.0 / 13.0
    p = p * z2 + 1.0 / 11.0
    p = p * z2 + 1.0 / 9.0
    p = p * z2 + 1.0 / 7.0
    p = p * z2 + 1.0 / 5.0
    p = p * z2 + 1.0 / 3.0
    p = p * z2 + 1.0
    return 2.0 * z * p + (LN2 if big else 0.0)
