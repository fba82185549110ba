"""``dropout(p)`` (free tier): in training each element is zeroed with probability ``p``
and the survivors scaled by ``1 / (1 - p)``; in prediction it is the identity.

The mask is never stored: element ``i`` of a batch is kept when
``jitbp.rng.uniform(ctx.seed, ctx.step, i) >= p``, which the backward recomputes.
"""
from numba import njit

from ..hookspecs import hookimpl
from ..layer import FREE, Layer
from ..rng import uniform
from .numbers import check_number


@njit(cache=True, inline="always", error_model="numpy")
def kept(ctx, i, p):
    """True when element ``i`` of this call survives dropout with probability ``p``."""
    return uniform(ctx.seed, ctx.step, i) >= p


@njit(cache=True, error_model="numpy")
def dropout_forward(xs, y, ctx):
    x, out = xs[0].reshape(-1), y.reshape(-1)
    p = ctx.settings[0]
    if not ctx.training or p == 0.0:
        out[:] = x
        return
    scale = out.dtype.type(1.0 / (1.0 - p))
    for i in range(out.size):
        out[i] = x[i] * scale if kept(ctx, i, p) else 0.0


@njit(cache=True, error_model="numpy")
def dropout_backward(xs, y, dy, dxs, ctx):
    d, dx = dy.reshape(-1), dxs[0].reshape(-1)
    p = ctx.settings[0]
    if not ctx.training or p == 0.0:
        dx[:] = d
        return
    scale = dx.dtype.type(1.0 / (1.0 - p))
    for i in range(dx.size):
        dx[i] = d[i] * scale if kept(ctx, i, p) else 0.0


class Dropout(Layer):
    kind = "dropout"
    description = "training: zero each element with probability p, scale the rest by 1/(1-p); prediction: y = x"
    tier = FREE
    kept_workspaces = ()
    forward_kernel, backward_kernel = dropout_forward, dropout_backward
    cuda_kernels = "jitbp.cuda.dropout"

    def __init__(self, p=0.5, *, name=None):
        super().__init__(name=name)
        self.p = check_number("dropout", "p (the probability of zeroing an element)", p, 0.0, 1.0,
                              include_high=False)

    def settings(self):
        return {"p": self.p}

    def config(self):
        return {"p": self.p}


@hookimpl
def register_layers(register):
    register(Dropout)
