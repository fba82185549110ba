"""Tiny contract-2 layers, one per tier, for the engine, capture and kit tests.

- ``GradScale`` (gradient tier): ``y = x * w`` per feature, its gradient written whole;
- ``Leaky`` (free tier): leaky ReLU with a ``slope`` setting;
- ``Mask`` (free tier): keeps each element with probability ``1 - p`` in training, a
  mask drawn again from ``jitbp.rng.uniform`` in the backward (nothing stored);
- ``CountedScale`` (fused tier with a context): ``y = x * w`` with the fused update, and a
  state counter of the training forwards it ran.
"""
import numpy as np
from numba import njit

from jitbp.hookspecs import hookimpl
from jitbp.kernels import updated
from jitbp.layer import FREE, FUSED, GRADIENT, Layer
from jitbp.rng import uniform


@njit(cache=True)
def scale_forward(xs, params, y, ctx):
    x, w = xs[0], params[0]
    for b in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[b, j] = x[b, j] * w[j]


@njit(cache=True)
def grad_scale_backward(xs, y, dy, dxs, need_dx, params, grads, ctx):
    x, w, g = xs[0], params[0], grads[0]
    for j in range(x.shape[1]):
        g[j] = 0.0
    for b in range(x.shape[0]):
        for j in range(x.shape[1]):
            if need_dx:
                dxs[0][b, j] = dy[b, j] * w[j]
            g[j] += dy[b, j] * x[b, j]


@njit(cache=True)
def counted_forward(xs, params, y, ctx):
    scale_forward(xs, params, y, ctx)
    if ctx.training:
        ctx.state[0][0] += 1.0


@njit(cache=True)
def counted_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ctx):
    x, w = xs[0], params[0]
    for j in range(x.shape[1]):
        g = 0.0
        for b in range(x.shape[0]):
            if need_dx:
                dxs[0][b, j] = dy[b, j] * w[j]
            g += dy[b, j] * x[b, j]
        w[j] = updated(rule, w[j], g, states[0], j, hyper)


@njit(cache=True)
def leaky_forward(xs, y, ctx):
    slope = ctx.settings[0]
    x, yf = xs[0].reshape(-1), y.reshape(-1)
    for i in range(x.size):
        yf[i] = x[i] if x[i] > 0 else slope * x[i]


@njit(cache=True)
def leaky_backward(xs, y, dy, dxs, ctx):
    slope = ctx.settings[0]
    x, dyf, dx = xs[0].reshape(-1), dy.reshape(-1), dxs[0].reshape(-1)
    for i in range(x.size):
        dx[i] = dyf[i] if x[i] > 0 else slope * dyf[i]


@njit(cache=True)
def _keep(ctx, i):
    """The mask factor of element ``i``: 0 or 1/(1-p) in training, 1 in prediction."""
    p = ctx.settings[0]
    if not ctx.training:
        return 1.0
    return 1.0 / (1.0 - p) if uniform(ctx.seed, ctx.step, i) >= p else 0.0


@njit(cache=True)
def mask_forward(xs, y, ctx):
    x, yf = xs[0].reshape(-1), y.reshape(-1)
    for i in range(x.size):
        yf[i] = x[i] * _keep(ctx, i)


@njit(cache=True)
def mask_backward(xs, y, dy, dxs, ctx):
    dyf, dx = dy.reshape(-1), dxs[0].reshape(-1)
    for i in range(dyf.size):
        dx[i] = dyf[i] * _keep(ctx, i)


class _Width(Layer):
    def __init__(self, width, name=None):
        super().__init__(name=name)
        self.width = width

    def input_shape(self):
        return (self.width,)

    def config(self):
        return {"width": self.width}


class GradScale(_Width):
    kind = "test_grad_scale"
    tier = GRADIENT
    forward_kernel = scale_forward
    backward_kernel = grad_scale_backward

    def __init__(self, width, w=None, name=None):
        super().__init__(width, name=name)
        self.params["w"] = np.linspace(0.5, 1.5, width) if w is None else np.array(w, dtype=float)

    @classmethod
    def param_shapes(cls, width, **config):
        return {"w": (width,)}


class CountedScale(GradScale):
    kind = "test_counted_scale"
    tier = FUSED
    uses_context = True
    forward_kernel = counted_forward
    backward_kernel = counted_backward

    def __init__(self, width, w=None, name=None):
        super().__init__(width, w, name=name)
        self.state["count"] = np.zeros(1)

    @classmethod
    def state_shapes(cls, width, **config):
        return {"count": (1,)}


class Leaky(_Width):
    kind = "test_leaky"
    tier = FREE
    forward_kernel = leaky_forward
    backward_kernel = leaky_backward

    def __init__(self, width, slope=0.1, name=None):
        super().__init__(width, name=name)
        self.slope = slope

    def settings(self):
        return {"slope": self.slope}

    def config(self):
        return {"width": self.width, "slope": self.slope}


class Mask(Leaky):
    kind = "test_mask"
    forward_kernel = mask_forward
    backward_kernel = mask_backward

    def __init__(self, width, p=0.5, name=None):
        super().__init__(width, p, name=name)

    def settings(self):
        return {"p": self.slope}

    def config(self):
        return {"width": self.width, "p": self.slope}


class TierPlugin:
    """Registers the layers above (tests register it for as long as they need them)."""

    @hookimpl
    def register_layers(self, register):
        for cls in (GradScale, CountedScale, Leaky, Mask):
            register(cls)
