"""A dense layer written in the gradient tier, and the same maths in the fused tier, for benchmarks/tiers.py.

Both compute with ``np.dot``; the gradient tier writes ``grads`` and lets the engine apply the
optimizer, the fused twin puts its gradient in a workspace and applies ``update_row`` itself
(as conv1d does), so the two differ only in who applies the update.
"""
import numpy as np
from numba import njit

from jitbp.kernels import update_row
from jitbp.layer import FUSED, GRADIENT, Layer


@njit(cache=True)
def dense_forward(xs, params, y, ctx):
    np.dot(xs[0], params[0].T, y)
    y += params[1]


@njit(cache=True)
def gradient_dense_backward(xs, y, dy, dxs, need_dx, params, grads, ctx):
    if need_dx:
        np.dot(dy, params[0], dxs[0])
    np.dot(dy.T, xs[0], grads[0])
    grads[1][:] = dy.sum(axis=0)


@njit(cache=True)
def fused_dense_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ctx):
    if need_dx:
        np.dot(dy, params[0], dxs[0])
    gW, gb = ctx.ws[0], ctx.ws[1]
    np.dot(dy.T, xs[0], gW)
    gb[:] = dy.sum(axis=0)
    update_row(rule, params[0].reshape(-1), gW.reshape(-1), states[0], 0, hyper)
    update_row(rule, params[1], gb, states[1], 0, hyper)


class GradientDense(Layer):
    kind = "bench_gradient_dense"
    tier = GRADIENT
    forward_kernel, backward_kernel = dense_forward, gradient_dense_backward

    def __init__(self, n_in, n_out, seed=0, name=None):
        super().__init__(name=name)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(n_in)
        self.n_in, self.n_out = n_in, n_out
        self.params["W"] = rng.uniform(-bound, bound, (n_out, n_in))
        self.params["b"] = rng.uniform(-bound, bound, n_out)

    def input_shape(self):
        return (self.n_in,)

    def output_shape(self, input_shapes):
        return (self.n_out,)


class FusedDense(GradientDense):
    kind = "bench_fused_dense"
    tier = FUSED
    uses_context = True
    kept_workspaces = ()
    forward_kernel, backward_kernel = dense_forward, fused_dense_backward

    def workspace_shapes(self, batch, input_shapes):
        return ((self.n_out, self.n_in), (self.n_out,))
