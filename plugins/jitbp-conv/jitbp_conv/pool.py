"""``maxpool1d`` and ``avgpool1d`` over windows of (batch, channels, length) inputs (no padding).

Contract 2's fused tier without parameters or workspaces: kernel size and stride arrive
as ``ctx.settings``.
"""
from numba import njit

from jitbp.layer import FUSED, Layer, check_size

from .geometry import output_length, sequence_shape


@njit(cache=True, inline="always")
def _argmax(row, start, k):
    best = start
    for j in range(start + 1, start + k):
        if row[j] > row[best]:
            best = j
    return best


@njit(cache=True)
def maxpool1d_forward(xs, params, y, ctx):
    x = xs[0]
    k, stride = int(ctx.settings[0]), int(ctx.settings[1])
    n, c, l_out = y.shape
    for s in range(n):
        for ch in range(c):
            for t in range(l_out):
                y[s, ch, t] = x[s, ch, _argmax(x[s, ch], t * stride, k)]


@njit(cache=True)
def maxpool1d_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ctx):
    x, dx = xs[0], dxs[0]
    k, stride = int(ctx.settings[0]), int(ctx.settings[1])
    n, c, l_out = dy.shape
    dx[:] = 0.0
    for s in range(n):
        for ch in range(c):
            for t in range(l_out):
                dx[s, ch, _argmax(x[s, ch], t * stride, k)] += dy[s, ch, t]


@njit(cache=True)
def avgpool1d_forward(xs, params, y, ctx):
    x = xs[0]
    k, stride = int(ctx.settings[0]), int(ctx.settings[1])
    n, c, l_out = y.shape
    for s in range(n):
        for ch in range(c):
            for t in range(l_out):
                total = 0.0
                for j in range(t * stride, t * stride + k):
                    total += x[s, ch, j]
                y[s, ch, t] = total / k


@njit(cache=True)
def avgpool1d_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ctx):
    dx = dxs[0]
    k, stride = int(ctx.settings[0]), int(ctx.settings[1])
    n, c, l_out = dy.shape
    dx[:] = 0.0
    for s in range(n):
        for ch in range(c):
            for t in range(l_out):
                share = dy[s, ch, t] / k
                for j in range(t * stride, t * stride + k):
                    dx[s, ch, j] += share


class _Pool1d(Layer):
    """Shared constructor and shapes: windows of ``kernel_size``, ``stride`` defaults to it."""

    tier, uses_context, kept_workspaces = FUSED, True, ()

    def __init__(self, kernel_size, stride=None, name=None):
        super().__init__(name=name)
        self.kernel_size = check_size(f"{self.kind} kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else check_size(f"{self.kind} stride", stride)

    def output_shape(self, input_shapes):
        channels, length = sequence_shape(self.kind, input_shapes)
        return (channels, output_length(self.kind, length, self.kernel_size, self.stride))

    def settings(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride}

    def config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride}


class MaxPool1d(_Pool1d):
    kind = "maxpool1d"
    description = "maximum over windows of kernel_size, every stride (default kernel_size) steps"
    forward_kernel, backward_kernel = maxpool1d_forward, maxpool1d_backward


class AvgPool1d(_Pool1d):
    kind = "avgpool1d"
    description = "mean over windows of kernel_size, every stride (default kernel_size) steps"
    forward_kernel, backward_kernel = avgpool1d_forward, avgpool1d_backward
