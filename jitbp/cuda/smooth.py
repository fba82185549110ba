"""CUDA twins of the free-tier activations of :mod:`jitbp.layers.smooth`:
``jitbp.cuda.smooth.<kind>``. The scalar math is the CPU kernels' own, compiled for the
device by :func:`jitbp.scalar.on_cuda`."""
from ..layers import smooth
from ..scalar import on_cuda
from .api import cuda
from .launch import flat, grid

LEAKY_RELU, ELU, GELU, SILU, SOFTPLUS = range(5)
_leaky_relu_value, _leaky_relu_slope = on_cuda(smooth.leaky_relu_value), on_cuda(smooth.leaky_relu_slope)
_elu_value, _elu_slope = on_cuda(smooth.elu_value), on_cuda(smooth.elu_slope)
_gelu_value, _gelu_slope = on_cuda(smooth.gelu_value), on_cuda(smooth.gelu_slope)
_silu_value, _silu_slope = on_cuda(smooth.silu_value), on_cuda(smooth.silu_slope)
_softplus_value, _softplus_slope = on_cuda(smooth.softplus_value), on_cuda(smooth.softplus_slope)


@cuda.jit(device=True)
def _value(op, x, a, b):
    if op == LEAKY_RELU:
        return _leaky_relu_value(x, a, b)
    if op == ELU:
        return _elu_value(x, a, b)
    if op == GELU:
        return _gelu_value(x, a, b)
    if op == SILU:
        return _silu_value(x, a, b)
    return _softplus_value(x, a, b)


@cuda.jit(device=True)
def _slope(op, x, a, b):
    if op == LEAKY_RELU:
        return _leaky_relu_slope(x, a, b)
    if op == ELU:
        return _elu_slope(x, a, b)
    if op == GELU:
        return _gelu_slope(x, a, b)
    if op == SILU:
        return _silu_slope(x, a, b)
    return _softplus_slope(x, a, b)


@cuda.jit(device=True)
def _setting(settings, k):
    return settings[k] if k < settings.size else 0.0


@cuda.jit
def _forward(op, settings, x, y):
    i = cuda.grid(1)
    if i < y.size:
        y[i] = _value(op, x[i], _setting(settings, 0), _setting(settings, 1))


@cuda.jit
def _backward(op, settings, x, dy, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dy[i] * _slope(op, x[i], _setting(settings, 0), _setting(settings, 1))


class Activation:
    """``forward``/``backward`` launchers of one free-tier activation."""

    def __init__(self, op):
        self.op = op

    def forward(self, xs, y, ctx):
        _forward[grid(y.size)](self.op, ctx.settings, flat(xs[0]), flat(y))

    def backward(self, xs, y, dy, dxs, ctx):
        _backward[grid(dy.size)](self.op, ctx.settings, flat(xs[0]), flat(dy), flat(dxs[0]))


leaky_relu = Activation(LEAKY_RELU)
elu = Activation(ELU)
gelu = Activation(GELU)
silu = Activation(SILU)
softplus = Activation(SOFTPLUS)
