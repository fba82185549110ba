"""CUDA kernels of ``softmax``: one thread per sample, compiled from the CPU layer's
``@scalar`` row functions (:mod:`jitbp.layers.softmax`)."""
from ..layers.softmax import softmax_row, softmax_row_backward
from ..scalar import on_cuda
from .api import cuda
from .launch import grid

_row = on_cuda(softmax_row)
_row_backward = on_cuda(softmax_row_backward)


@cuda.jit
def _forward(x, y):
    s = cuda.grid(1)
    if s < x.shape[0]:
        _row(x, y, s)


@cuda.jit
def _backward(y, dy, dx):
    s = cuda.grid(1)
    if s < y.shape[0]:
        _row_backward(y, dy, dx, s)


def forward(xs, params, y, ws):
    _forward[grid(y.shape[0])](xs[0], y)


def backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    _backward[grid(y.shape[0])](y, dy, dxs[0])
