"""``conv1d``: cross-correlation of (batch, in_channels, length) inputs, as PyTorch's Conv1d.

Both kernels unfold the input into columns (im2col) in a workspace and use one
matrix product per batch. The derivative kernel computes the weight gradient into
a workspace tile, the input delta's columns from the old weights, then applies the
optimizer to every weight element and folds the columns back into the input delta.
Contract 2's fused tier: stride and padding arrive as ``ctx.settings``; every
workspace is rewritten by each kernel, so none is kept from forward to backward.
"""
import numpy as np
from numba import njit

from jitbp.kernels import updated
from jitbp.init import check_init, draw
from jitbp.layer import FUSED, Layer, check_param, check_size

from .geometry import check_non_negative, output_length, sequence_shape


@njit(cache=True, inline="always")
def _im2col(x, k, stride, padding, cols):
    """cols[c * k + j, s * l_out + t] = x[s, c, t * stride + j - padding] (0 outside)."""
    n, c_in, length = x.shape
    l_out = cols.shape[1] // n
    for c in range(c_in):
        for j in range(k):
            row = cols[c * k + j]
            for s in range(n):
                base = s * l_out
                for t in range(l_out):
                    pos = t * stride + j - padding
                    row[base + t] = x[s, c, pos] if 0 <= pos < length else 0.0


@njit(cache=True, inline="always")
def _col2im(cols, k, stride, padding, dx):
    """The adjoint of :func:`_im2col`: sum the columns back into ``dx``."""
    n, c_in, length = dx.shape
    l_out = cols.shape[1] // n
    dx[:] = 0.0
    for c in range(c_in):
        for j in range(k):
            row = cols[c * k + j]
            for s in range(n):
                base = s * l_out
                for t in range(l_out):
                    pos = t * stride + j - padding
                    if 0 <= pos < length:
                        dx[s, c, pos] += row[base + t]


@njit(cache=True, inline="always")
def _forward(x, W, b, y, ctx, has_bias):
    stride, padding = int(ctx.settings[0]), int(ctx.settings[1])
    cols, out = ctx.ws[0], ctx.ws[1]
    n, c_out, l_out = y.shape
    k = W.shape[2]
    _im2col(x, k, stride, padding, cols)
    np.dot(W.reshape(c_out, W.shape[1] * k), cols, out)
    for s in range(n):
        for o in range(c_out):
            bias = b[o] if has_bias else 0.0
            for t in range(l_out):
                y[s, o, t] = out[o, s * l_out + t] + bias


@njit(cache=True, inline="always")
def _backward(x, dy, dx, need_dx, W, b, rule, hyper, w_state, b_state, ctx, has_bias):
    stride, padding = int(ctx.settings[0]), int(ctx.settings[1])
    cols, dyt, grad = ctx.ws[0], ctx.ws[1], ctx.ws[2]
    n, c_out, l_out = dy.shape
    k = W.shape[2]
    W2 = W.reshape(c_out, W.shape[1] * k)
    _im2col(x, k, stride, padding, cols)
    for s in range(n):
        for o in range(c_out):
            for t in range(l_out):
                dyt[o, s * l_out + t] = dy[s, o, t]
    np.dot(dyt, cols.T, grad)
    if need_dx:
        np.dot(W2.T, dyt, cols)  # the input delta's columns, from the weights before the update
    for o in range(c_out):
        for j in range(W2.shape[1]):
            W2[o, j] = updated(rule, W2[o, j], grad[o, j], w_state, o * W2.shape[1] + j, hyper)
    if has_bias:
        for o in range(c_out):
            g = 0.0
            for i in range(dyt.shape[1]):
                g += dyt[o, i]
            b[o] = updated(rule, b[o], g, b_state, o, hyper)
    if need_dx:
        _col2im(cols, k, stride, padding, dx)


@njit(cache=True)
def conv1d_forward(xs, params, y, ctx):
    _forward(xs[0], params[0], params[1], y, ctx, True)


@njit(cache=True)
def conv1d_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ctx):
    _backward(xs[0], dy, dxs[0], need_dx, params[0], params[1], rule, hyper, states[0], states[1], ctx, True)


@njit(cache=True)
def conv1d_nobias_forward(xs, params, y, ctx):
    W = params[0]
    _forward(xs[0], W, W[0, 0], y, ctx, False)


@njit(cache=True)
def conv1d_nobias_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ctx):
    W = params[0]
    _backward(xs[0], dy, dxs[0], need_dx, W, W[0, 0], rule, hyper, states[0], states[0], ctx, False)


class Conv1d(Layer):
    """1-D convolution with PyTorch's conventions and default initialisation."""

    kind = "conv1d"
    description = ("1-D convolution of (channels, length) samples: W (out, in, kernel_size), b (out,); "
                   "stride, zero padding")
    tier, uses_context, kept_workspaces = FUSED, True, ()
    forward_kernel, backward_kernel = conv1d_forward, conv1d_backward

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 W=None, b=None, seed=None, name=None, init="uniform"):
        super().__init__(name=name)
        self.in_channels = check_size("conv1d in_channels", in_channels)
        self.out_channels = check_size("conv1d out_channels", out_channels)
        self.kernel_size = check_size("conv1d kernel_size", kernel_size)
        self.stride = check_size("conv1d stride", stride)
        self.padding = check_non_negative("conv1d padding", padding)
        self.bias = bool(bias)
        if not self.bias and b is not None:
            raise ValueError("conv1d: b given but bias=False")
        self.init = check_init(init)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.in_channels * self.kernel_size)
        shape = (self.out_channels, self.in_channels, self.kernel_size)
        fans = (self.in_channels * self.kernel_size, self.out_channels * self.kernel_size)
        self.params["W"] = (check_param("conv1d W", W, shape) if W is not None
                            else rng.uniform(-bound, bound, shape) if init == "uniform"
                            else draw(rng, init, shape, *fans))
        if self.bias:
            self.params["b"] = (check_param("conv1d b", b, (self.out_channels,)) if b is not None
                                else rng.uniform(-bound, bound, self.out_channels) if init == "uniform"
                                else np.zeros(self.out_channels))
        else:
            self.forward_kernel, self.backward_kernel = conv1d_nobias_forward, conv1d_nobias_backward

    def _length_out(self, input_shapes):
        _, length = sequence_shape(self.kind, input_shapes, self.in_channels)
        return output_length(self.kind, length, self.kernel_size, self.stride, self.padding)

    def output_shape(self, input_shapes):
        return (self.out_channels, self._length_out(input_shapes))

    def workspace_shapes(self, batch, input_shapes):
        columns = batch * self._length_out(input_shapes)
        rows = self.in_channels * self.kernel_size
        return ((rows, columns), (self.out_channels, columns), (self.out_channels, rows))

    def settings(self):
        return {"stride": self.stride, "padding": self.padding}

    @classmethod
    def param_shapes(cls, in_channels, out_channels, kernel_size, bias=True, **_):
        shape = (check_size("conv1d out_channels", out_channels), check_size("conv1d in_channels", in_channels),
                 check_size("conv1d kernel_size", kernel_size))
        return {"W": shape, "b": shape[:1]} if bias else {"W": shape}

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "bias": self.bias, **({"init": self.init} if self.init != "uniform" else {})}
