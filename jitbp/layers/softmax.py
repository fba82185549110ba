"""``softmax`` over the features of each sample.

The per-sample math is written once with ``@scalar`` and compiled for CUDA by
:mod:`jitbp.cuda.softmax`.
"""
import math

from numba import njit

from ..hookspecs import hookimpl
from ..layer import Layer
from ..errors import ShapeError
from ..scalar import scalar


@scalar
def softmax_row(x, y, s):
    """Row ``s`` of ``y`` = softmax of row ``s`` of ``x`` (max subtracted first)."""
    top = x[s, 0]
    for j in range(1, x.shape[1]):
        top = max(top, x[s, j])
    total = 0.0
    for j in range(x.shape[1]):
        y[s, j] = math.exp(x[s, j] - top)
        total += y[s, j]
    for j in range(x.shape[1]):
        y[s, j] /= total


@scalar
def softmax_row_backward(y, dy, dx, s):
    """Row ``s`` of ``dx`` = y * (dy - <dy, y>), the softmax Jacobian applied to ``dy``."""
    dot = 0.0
    for j in range(y.shape[1]):
        dot += dy[s, j] * y[s, j]
    for j in range(y.shape[1]):
        dx[s, j] = y[s, j] * (dy[s, j] - dot)


@njit(cache=True, error_model="numpy")
def softmax_forward(xs, params, y, ws):
    for s in range(y.shape[0]):
        softmax_row(xs[0], y, s)


@njit(cache=True, error_model="numpy")
def softmax_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    for s in range(y.shape[0]):
        softmax_row_backward(y, dy, dxs[0], s)


class Softmax(Layer):
    kind = "softmax"
    description = "exp(x) / sum(exp(x)) over the features of each sample"
    forward_kernel, backward_kernel = softmax_forward, softmax_backward
    cuda_kernels = "jitbp.cuda.softmax"

    def output_shape(self, input_shapes):
        if len(input_shapes[0]) != 1:
            raise ShapeError(f"softmax takes flat feature vectors, got per-sample shape {input_shapes[0]}")
        return input_shapes[0]


@hookimpl
def register_layers(register):
    register(Softmax)
