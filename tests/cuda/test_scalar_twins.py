"""``jitbp.scalar.on_cuda`` recompiles a @scalar function's source for the device."""
import math

import numpy as np

from cuda_helpers import needs_cuda
from jitbp.scalar import on_cuda, scalar

pytestmark = needs_cuda


@scalar
def tanh(x):  # named like the math function it calls: math.tanh is an attribute, not this global
    return math.tanh(x)


@scalar
def twice_tanh(x):
    return 2.0 * tanh(x)


def test_a_scalar_named_like_a_math_function_calls_its_twin_and_math():
    global cuda  # a module global, so the simulator can stand in for it inside the kernel
    from jitbp.cuda.api import cuda

    device_twice_tanh = on_cuda(twice_tanh)

    @cuda.jit
    def kernel(x, out):
        i = cuda.grid(1)
        if i < x.size:
            out[i] = device_twice_tanh(x[i])

    x = np.linspace(-2.0, 2.0, 7)
    out = np.empty_like(x)
    kernel[1, x.size](x, out)
    np.testing.assert_array_equal(out, [twice_tanh(v) for v in x])
    np.testing.assert_allclose(out, 2.0 * np.tanh(x), rtol=1e-15)
