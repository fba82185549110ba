"""Normalisation layers (gradient tier): ``batchnorm`` and ``layernorm``, as torch.nn's.

Both keep one workspace from forward to backward: the mean and ``1 / sqrt(var + eps)``
of each normalised group, from which the backward recomputes ``xhat``. Sums run in
float64 whatever the network's dtype.
"""
import math

import numpy as np
from numba import njit

from ..errors import ShapeError
from ..hookspecs import hookimpl
from ..layer import GRADIENT, Layer, check_size
from .numbers import check_number

MOMENTUM, EPS = 0, 1


# -- batchnorm: x of shape (batch, channels) or (batch, channels, length) ------------------------


@njit(cache=True, inline="always", error_model="numpy")
def _channels(x):
    """``x`` as (batch, channels, length), length 1 for dense outputs."""
    return x.reshape(x.shape[0], x.shape[1], x.size // (x.shape[0] * x.shape[1]))


@njit(cache=True, error_model="numpy")
def batchnorm_forward(xs, params, y, ctx):
    x, out = _channels(xs[0]), _channels(y)
    gamma, beta = params[0], params[1]
    running_mean, running_var = ctx.state[0], ctx.state[1]
    stats = ctx.ws[0]
    momentum, eps = ctx.settings[MOMENTUM], ctx.settings[EPS]
    batch, channels, length = x.shape
    m = batch * length
    if ctx.training and m < 2:
        raise ValueError("batchnorm: training needs more than one value per channel (batch * length >= 2)")
    for c in range(channels):
        if ctx.training:
            total = 0.0
            for s in range(batch):
                for t in range(length):
                    total += x[s, c, t]
            mean = total / m
            squares = 0.0
            for s in range(batch):
                for t in range(length):
                    e = x[s, c, t] - mean
                    squares += e * e
            var = squares / m
            running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean
            running_var[c] = (1.0 - momentum) * running_var[c] + momentum * squares / (m - 1)
        else:
            mean, var = np.float64(running_mean[c]), np.float64(running_var[c])
        inv_std = 1.0 / math.sqrt(var + eps)
        stats[0, c], stats[1, c] = mean, inv_std
        g, b = np.float64(gamma[c]), np.float64(beta[c])
        for s in range(batch):
            for t in range(length):
                out[s, c, t] = (x[s, c, t] - mean) * inv_std * g + b


@njit(cache=True, error_model="numpy")
def batchnorm_backward(xs, y, dy, dxs, need_dx, params, grads, ctx):
    x, d = _channels(xs[0]), _channels(dy)
    gamma = params[0]
    stats = ctx.ws[0]
    batch, channels, length = x.shape
    m = batch * length
    for c in range(channels):
        mean, inv_std = np.float64(stats[0, c]), np.float64(stats[1, c])
        sum_dy, sum_dy_xhat = 0.0, 0.0
        for s in range(batch):
            for t in range(length):
                sum_dy += d[s, c, t]
                sum_dy_xhat += d[s, c, t] * (x[s, c, t] - mean) * inv_std
        grads[0][c], grads[1][c] = sum_dy_xhat, sum_dy
        if need_dx:
            dx = _channels(dxs[0])
            k = gamma[c] * inv_std
            for s in range(batch):
                for t in range(length):
                    if ctx.training:
                        xhat = (x[s, c, t] - mean) * inv_std
                        dx[s, c, t] = k * (d[s, c, t] - (sum_dy + xhat * sum_dy_xhat) / m)
                    else:
                        dx[s, c, t] = k * d[s, c, t]


class BatchNorm(Layer):
    kind = "batchnorm"
    description = ("normalise each feature (dense) or channel (conv1d) over the batch, then scale and shift; "
                   "running statistics in prediction (torch.nn.BatchNorm1d)")
    tier = GRADIENT
    kept_workspaces = (0,)
    forward_kernel, backward_kernel = batchnorm_forward, batchnorm_backward
    cuda_kernels = "jitbp.cuda.normalization.batchnorm"

    def __init__(self, n, momentum=0.1, eps=1e-5, *, name=None):
        super().__init__(name=name)
        self.n = check_size("batchnorm: n (the number of features or channels)", n)
        self.momentum = check_number("batchnorm", "momentum", momentum, 0.0, 1.0)
        self.eps = check_number("batchnorm", "eps", eps, 0.0, include_low=False)
        self.params["gamma"] = np.ones(self.n)
        self.params["beta"] = np.zeros(self.n)
        self.state["running_mean"] = np.zeros(self.n)
        self.state["running_var"] = np.ones(self.n)

    def output_shape(self, input_shapes):
        shape = tuple(input_shapes[0])
        if len(shape) not in (1, 2) or shape[0] != self.n:
            raise ShapeError(f"batchnorm({self.n}) takes samples of shape ({self.n},) or ({self.n}, length), "
                             f"got {shape}")
        return shape

    def workspace_shapes(self, batch, input_shapes):
        return ((2, self.n),)

    def settings(self):
        return {"momentum": self.momentum, "eps": self.eps}

    def config(self):
        return {"n": self.n, "momentum": self.momentum, "eps": self.eps}

    @classmethod
    def param_shapes(cls, n, **_):
        return {"gamma": (n,), "beta": (n,)}

    @classmethod
    def state_shapes(cls, n, **_):
        return {"running_mean": (n,), "running_var": (n,)}


# -- layernorm: each sample's trailing ``shape`` normalised on its own ----------------------------


@njit(cache=True, error_model="numpy")
def layernorm_forward(xs, params, y, ctx):
    stats = ctx.ws[0]
    width = xs[0].size // max(stats.shape[1], 1)
    x, out = xs[0].reshape(-1, width), y.reshape(-1, width)
    eps = ctx.settings[0]
    for r in range(x.shape[0]):
        total = 0.0
        for j in range(width):
            total += x[r, j]
        mean = total / width
        squares = 0.0
        for j in range(width):
            e = x[r, j] - mean
            squares += e * e
        inv_std = 1.0 / math.sqrt(squares / width + eps)
        stats[0, r], stats[1, r] = mean, inv_std
        for j in range(width):
            value = (x[r, j] - mean) * inv_std
            if len(params) == 2:
                value = value * params[0].reshape(-1)[j] + params[1].reshape(-1)[j]
            out[r, j] = value


@njit(cache=True, error_model="numpy")
def layernorm_backward(xs, y, dy, dxs, need_dx, params, grads, ctx):
    stats = ctx.ws[0]
    width = xs[0].size // max(stats.shape[1], 1)
    x, d = xs[0].reshape(-1, width), dy.reshape(-1, width)
    if len(grads) == 2:
        dgamma, dbeta = grads[0].reshape(-1), grads[1].reshape(-1)
        gamma = params[0].reshape(-1)
        dgamma[:] = 0.0
        dbeta[:] = 0.0
    for r in range(x.shape[0]):
        mean, inv_std = np.float64(stats[0, r]), np.float64(stats[1, r])
        sum_g, sum_g_xhat = 0.0, 0.0
        for j in range(width):
            xhat = (x[r, j] - mean) * inv_std
            g = np.float64(d[r, j])
            if len(grads) == 2:
                dgamma[j] += g * xhat
                dbeta[j] += g
                g *= gamma[j]
            sum_g += g
            sum_g_xhat += g * xhat
        if need_dx:
            dx = dxs[0].reshape(-1, width)
            for j in range(width):
                xhat = (x[r, j] - mean) * inv_std
                g = np.float64(d[r, j])
                if len(grads) == 2:
                    g *= gamma[j]
                dx[r, j] = inv_std * (g - (sum_g + xhat * sum_g_xhat) / width)


def _normalized_shape(shape):
    """``shape`` (an int or a sequence of them) as a tuple of positive ints."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(f"layernorm: shape must be a positive int or a non-empty sequence of them, got {shape!r}")
    return tuple(check_size("layernorm: shape entries", n) for n in shape)


class LayerNorm(Layer):
    kind = "layernorm"
    description = "normalise the trailing shape of each sample, then scale and shift (torch.nn.LayerNorm)"
    tier = GRADIENT
    kept_workspaces = (0,)
    forward_kernel, backward_kernel = layernorm_forward, layernorm_backward
    cuda_kernels = "jitbp.cuda.normalization.layernorm"

    def __init__(self, shape, eps=1e-5, elementwise_affine=True, *, name=None):
        super().__init__(name=name)
        self.shape = _normalized_shape(shape)
        self.eps = check_number("layernorm", "eps", eps, 0.0, include_low=False)
        if not isinstance(elementwise_affine, (bool, np.bool_)):
            raise TypeError(f"layernorm: elementwise_affine must be True or False, got {elementwise_affine!r}")
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.params["gamma"] = np.ones(self.shape)
            self.params["beta"] = np.zeros(self.shape)

    def output_shape(self, input_shapes):
        shape = tuple(input_shapes[0])
        if shape[len(shape) - len(self.shape):] != self.shape:
            raise ShapeError(f"layernorm{self.shape} normalises samples whose shape ends with {self.shape}, "
                             f"got {shape}")
        return shape

    def workspace_shapes(self, batch, input_shapes):
        groups = int(np.prod(input_shapes[0], dtype=np.int64)) // int(np.prod(self.shape, dtype=np.int64))
        return ((2, batch * groups),)

    def settings(self):
        return {"eps": self.eps}

    def config(self):
        return {"shape": list(self.shape), "eps": self.eps, "elementwise_affine": self.elementwise_affine}

    @classmethod
    def param_shapes(cls, shape, elementwise_affine=True, **_):
        shape = _normalized_shape(shape)
        return {"gamma": shape, "beta": shape} if elementwise_affine else {}

    @classmethod
    def state_shapes(cls, **_):
        return {}


@hookimpl
def register_layers(register):
    for cls in (BatchNorm, LayerNorm):
        register(cls)
