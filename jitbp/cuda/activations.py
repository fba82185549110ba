"""CUDA kernels of the element-wise activations: one launcher pair per layer kind,
``jitbp.cuda.activations.<kind>`` (sigmoid, tanh, relu, identity, step), compiled from
the CPU layers' ``@scalar`` source (:mod:`jitbp.layers.activations`)."""
from ..layers import activations as cpu
from ..layers.activations import IDENTITY, RELU, SIGMOID, STEP, TANH
from ..scalar import on_cuda
from .api import cuda
from .launch import flat, grid

_forward_op = on_cuda(cpu.forward_op)
_backward_op = on_cuda(cpu.backward_op)


@cuda.jit
def _forward(op, x, y):
    i = cuda.grid(1)
    if i < y.size:
        y[i] = _forward_op(op, x[i], 1.0)


@cuda.jit
def _backward(op, x, y, dy, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = _backward_op(op, x[i], y[i], dy[i], 1.0)


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
