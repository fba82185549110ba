"""CUDA twin of ``dropout``: the CPU kernels' mask (the same counter stream, compiled
for the device by :func:`jitbp.scalar.on_cuda`), one thread per element."""
import numpy as np

from ..rng import uniform
from ..scalar import on_cuda
from .api import cuda
from .launch import copy, flat, grid

_uniform = on_cuda(uniform)


@cuda.jit
def _masked(settings, seed, step, src, dst):
    """``dst = src * mask / (1 - p)``: the forward on x, the backward on dy."""
    i = cuda.grid(1)
    if i >= dst.size:
        return
    p = settings[0]
    dst[i] = src[i] * (1.0 / (1.0 - p)) if _uniform(seed, step, i) >= p else 0.0


def _apply(src, dst, ctx):
    """In prediction the identity; in training the mask (which keeps every element, times
    exactly 1.0, when p is 0)."""
    if not ctx.training:
        copy(src, dst)
    else:
        _masked[grid(dst.size)](ctx.settings, np.uint64(ctx.seed), np.int64(ctx.step), flat(src), flat(dst))


def forward(xs, y, ctx):
    _apply(xs[0], y, ctx)


def backward(xs, y, dy, dxs, ctx):
    _apply(dy, dxs[0], ctx)
