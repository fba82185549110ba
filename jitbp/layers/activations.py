"""Element-wise activations: sigmoid, tanh, relu, identity, step.

Each op's math is written once as ``@scalar`` functions of one element, ``<op>_value``
and ``<op>_grad`` (``one`` is 1 in the arrays' dtype, so float32 stays float32; the
``_value`` suffix keeps ``tanh`` apart from ``math.tanh``, which ``on_cuda`` would
otherwise take for a call of the ``@scalar`` function), used by the CPU loops here and compiled
for CUDA by :mod:`jitbp.cuda.activations`. The float32 sigmoid has its own vectorized
forward loop (:func:`_sigmoid32`).
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ..hookspecs import hookimpl
from ..layer import Layer
from ..scalar import scalar

SIGMOID, TANH, RELU, IDENTITY, STEP = range(5)


@scalar
def sigmoid_value(v, one):
    return one / (one + math.exp(-v))


@scalar
def sigmoid_grad(x, y, dy, one):
    return dy * y * (one - y)


@scalar
def tanh_value(v, one):
    return math.tanh(v)


@scalar
def tanh_grad(x, y, dy, one):
    return dy * (one - y * y)


@scalar
def relu_value(v, one):
    return v if v > 0.0 else 0.0 * one


@scalar
def relu_grad(x, y, dy, one):
    return dy if x > 0.0 else 0.0 * one


@scalar
def step_value(v, one):
    return one if v >= 0.0 else 0.0 * one


@scalar
def step_grad(x, y, dy, one):
    return 0.0 * one


@scalar
def identity_value(v, one):
    return v


@scalar
def identity_grad(x, y, dy, one):
    return dy


@scalar
def forward_op(op, v, one):
    """``op``'s value at ``v``."""
    if op == SIGMOID:
        return sigmoid_value(v, one)
    if op == TANH:
        return tanh_value(v, one)
    if op == RELU:
        return relu_value(v, one)
    if op == STEP:
        return step_value(v, one)
    return identity_value(v, one)


@scalar
def backward_op(op, x, y, dy, one):
    """``dL/dx`` of ``op`` from its input ``x``, output ``y`` and ``dL/dy``."""
    if op == SIGMOID:
        return sigmoid_grad(x, y, dy, one)
    if op == TANH:
        return tanh_grad(x, y, dy, one)
    if op == RELU:
        return relu_grad(x, y, dy, one)
    if op == STEP:
        return step_grad(x, y, dy, one)
    return identity_grad(x, y, dy, one)

# float32 exp(-x) for the sigmoid, vectorizable (Numba's np.exp calls scalar libm):
# exp(v) = 2^k exp(r), k = round(v / ln 2), r = v - k ln 2 in two parts, exp(r) by
# Cephes' degree-7 expf polynomial (about 1 ulp), 2^k assembled in the exponent bits.
LOG2E, LN2_HI, LN2_LO = 1.4426950408889634, 0.693359375, -2.12194440e-4
EXPF_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
             5.0000001201e-1)
#: exp(v) for v beyond these stays finite and normal in float32.
EXPF_LOW, EXPF_HIGH = -87.0, 88.0


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the int32 ``bits`` (a bitcast, which vectorizes)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@njit(cache=True, inline="always", error_model="numpy")
def _sigmoid32(xf, yf):
    """Sigmoid of float32 ``xf`` into ``yf``, one vectorizable loop."""
    t = yf.dtype.type
    c0, c1, c2, c3, c4, c5 = EXPF_POLY
    for i in range(xf.size):
        v = min(max(-xf[i], t(EXPF_LOW)), t(EXPF_HIGH))
        k = np.floor(v * t(LOG2E) + t(0.5))
        r = v - k * t(LN2_HI) - k * t(LN2_LO)
        p = t(c0) * r + t(c1)
        p = p * r + t(c2)
        p = p * r + t(c3)
        p = p * r + t(c4)
        p = p * r + t(c5)
        two_to_k = _float32_from_bits(np.int32((np.int32(k) + np.int32(127)) << np.int32(23)))
        value = t(1.0) / (t(1.0) + (p * r * r + r + t(1.0)) * two_to_k)
        yf[i] = value if xf[i] == xf[i] else xf[i]


@njit(cache=True, inline="always", error_model="numpy")
def _forward(op, x, y):
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    one = yf.dtype.type(1.0)
    for i in range(xf.size):
        yf[i] = forward_op(op, xf[i], one)


@njit(cache=True, inline="always", error_model="numpy")
def _backward(op, x, y, dy, dx):
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    dyf = dy.reshape(-1)
    dxf = dx.reshape(-1)
    one = dxf.dtype.type(1.0)
    for i in range(xf.size):
        dxf[i] = backward_op(op, xf[i], yf[i], dyf[i], one)


@njit(cache=True, error_model="numpy")
def sigmoid_forward(xs, params, y, ws):
    if y.itemsize == 4:
        _sigmoid32(xs[0].reshape(-1), y.reshape(-1))
    else:
        _forward(SIGMOID, xs[0], y)


@njit(cache=True, error_model="numpy")
def sigmoid_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    _backward(SIGMOID, xs[0], y, dy, dxs[0])


@njit(cache=True, error_model="numpy")
def tanh_forward(xs, params, y, ws):
    _forward(TANH, xs[0], y)


@njit(cache=True, error_model="numpy")
def tanh_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    _backward(TANH, xs[0], y, dy, dxs[0])


@njit(cache=True, error_model="numpy")
def relu_forward(xs, params, y, ws):
    _forward(RELU, xs[0], y)


@njit(cache=True, error_model="numpy")
def relu_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    _backward(RELU, xs[0], y, dy, dxs[0])


@njit(cache=True, error_model="numpy")
def identity_forward(xs, params, y, ws):
    _forward(IDENTITY, xs[0], y)


@njit(cache=True, error_model="numpy")
def identity_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    _backward(IDENTITY, xs[0], y, dy, dxs[0])


@njit(cache=True, error_model="numpy")
def step_forward(xs, params, y, ws):
    _forward(STEP, xs[0], y)


@njit(cache=True, error_model="numpy")
def step_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    _backward(STEP, xs[0], y, dy, dxs[0])


class Sigmoid(Layer):
    kind = "sigmoid"
    description = "logistic 1 / (1 + exp(-x)); derivative y (1 - y)"
    forward_kernel, backward_kernel = sigmoid_forward, sigmoid_backward
    cuda_kernels = "jitbp.cuda.activations.sigmoid"


class Tanh(Layer):
    kind = "tanh"
    description = "hyperbolic tangent; derivative 1 - y^2"
    forward_kernel, backward_kernel = tanh_forward, tanh_backward
    cuda_kernels = "jitbp.cuda.activations.tanh"


class ReLU(Layer):
    kind = "relu"
    description = "max(x, 0); derivative 1 where x > 0, else 0"
    forward_kernel, backward_kernel = relu_forward, relu_backward
    cuda_kernels = "jitbp.cuda.activations.relu"


class Identity(Layer):
    kind = "identity"
    description = "y = x; derivative 1"
    forward_kernel, backward_kernel = identity_forward, identity_backward
    cuda_kernels = "jitbp.cuda.activations.identity"


class Step(Layer):
    kind = "step"
    description = ("perceptron threshold: 1 where x >= 0, else 0; derivative 0, so no "
                   "gradient flows through it (train it with a differentiable stand-in)")
    forward_kernel, backward_kernel = step_forward, step_backward
    cuda_kernels = "jitbp.cuda.activations.step"


@hookimpl
def register_layers(register):
    for cls in (Sigmoid, Tanh, ReLU, Identity, Step):
        register(cls)
