"""CUDA kernels of the element-wise activations: one launcher pair per layer kind,
``jitbp.cuda.activations.<kind>`` (sigmoid, tanh, relu, identity, step)."""
import math

from ..layers.activations import IDENTITY, RELU, SIGMOID, STEP, TANH
from .api import cuda
from .launch import flat, grid


@cuda.jit
def _forward(op, x, y):
    i = cuda.grid(1)
    if i >= y.size:
        return
    v = x[i]
    if op == SIGMOID:
        y[i] = 1.0 / (1.0 + math.exp(-v))
    elif op == TANH:
        y[i] = math.tanh(v)
    elif op == RELU:
        y[i] = v if v > 0.0 else 0.0
    elif op == STEP:
        y[i] = 1.0 if v >= 0.0 else 0.0
    else:
        y[i] = v


@cuda.jit
def _backward(op, x, y, dy, dx):
    i = cuda.grid(1)
    if i >= dx.size:
        return
    if op == SIGMOID:
        dx[i] = dy[i] * y[i] * (1.0 - y[i])
    elif op == TANH:
        dx[i] = dy[i] * (1.0 - y[i] * y[i])
    elif op == RELU:
        dx[i] = dy[i] if x[i] > 0.0 else 0.0
    elif op == STEP:
        dx[i] = 0.0
    else:
        dx[i] = dy[i]


class Activation:
    """``forward``/``backward`` launchers of one element-wise op."""

    def __init__(self, op):
        self.op = op

    def forward(self, xs, params, y, ws):
        _forward[grid(y.size)](self.op, flat(xs[0]), flat(y))

    def backward(self, xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
        _backward[grid(y.size)](self.op, flat(xs[0]), flat(y), flat(dy), flat(dxs[0]))


sigmoid = Activation(SIGMOID)
tanh = Activation(TANH)
relu = Activation(RELU)
identity = Activation(IDENTITY)
step = Activation(STEP)
