"""``jitbp.scalar.on_cuda`` recompiles a @scalar function's source for the device."""
import math

import numpy as np

from jitbp.cuda.api import cuda
from jitbp.scalar import on_cuda, scalar


@scalar
def tanh(x):  # named like the math function it calls: math.tanh is an attribute, not this global
    return math.tanh(x)


@scalar
def twice_tanh(x):
    return 2.0 * tanh(x)


TWICE_TANH = on_cuda(twice_tanh)


@cuda.jit
def _twice_tanh_kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = TWICE_TANH(x[i])


def test_a_scalar_named_like_a_math_function_calls_its_twin_and_math():
    x = np.linspace(-2.0, 2.0, 7)
    out = np.empty_like(x)
    _twice_tanh_kernel[1, x.size](x, out)
    expected = np.empty_like(x)
    for i, v in enumerate(x):
        expected[i] = twice_tanh(v)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(out, 2.0 * np.tanh(x), rtol=1e-15)
