"""CUDA kernels of ``softmax``: one thread per sample."""
import math

from .api import cuda
from .launch import grid


@cuda.jit
def _forward(x, y):
    s = cuda.grid(1)
    if s >= x.shape[0]:
        return
    top = x[s, 0]
    for j in range(1, x.shape[1]):
        top = max(top, x[s, j])
    total = 0.0
    for j in range(x.shape[1]):
        y[s, j] = math.exp(x[s, j] - top)
        total += y[s, j]
    for j in range(x.shape[1]):
        y[s, j] /= total


@cuda.jit
def _backward(y, dy, dx):
    s = cuda.grid(1)
    if s >= y.shape[0]:
        return
    dot = 0.0
    for j in range(y.shape[1]):
        dot += dy[s, j] * y[s, j]
    for j in range(y.shape[1]):
        dx[s, j] = y[s, j] * (dy[s, j] - dot)


def forward(xs, params, y, ws):
    _forward[grid(y.shape[0])](xs[0], y)


def backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    _backward[grid(y.shape[0])](y, dy, dxs[0])
