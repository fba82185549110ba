"""CUDA twins of ``batchnorm`` and ``layernorm`` (gradient tier): the CPU kernels'
formulas, one thread per channel (batchnorm) or per normalised row (layernorm), and
for layernorm's gradients one thread per feature. The launchers write ``grads``; the
CUDA engine applies the update after them."""
import math
from types import SimpleNamespace

from ..layers.normalization import EPS, MOMENTUM
from .api import cuda
from .launch import flat, grid


def _channels(array):
    """A device array as (batch, channels, length), length 1 for dense outputs."""
    batch, channels = array.shape[0], array.shape[1]
    return array.reshape(batch, channels, array.size // (batch * channels))


@cuda.jit
def _bn_forward(x, gamma, beta, running_mean, running_var, stats, settings, training, y):
    c = cuda.grid(1)
    batch, channels, length = x.shape
    if c >= channels:
        return
    m = batch * length
    if training:
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
        momentum = settings[MOMENTUM]
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * squares / (m - 1)
    else:
        mean, var = running_mean[c], running_var[c]
    inv_std = 1.0 / math.sqrt(var + settings[EPS])
    stats[0, c] = mean
    stats[1, c] = inv_std
    for s in range(batch):
        for t in range(length):
            y[s, c, t] = (x[s, c, t] - mean) * inv_std * gamma[c] + beta[c]


@cuda.jit
def _bn_backward(x, dy, gamma, stats, training, need_dx, dgamma, dbeta, dx):
    c = cuda.grid(1)
    batch, channels, length = x.shape
    if c >= channels:
        return
    m = batch * length
    mean, inv_std = stats[0, c], stats[1, c]
    sum_dy, sum_dy_xhat = 0.0, 0.0
    for s in range(batch):
        for t in range(length):
            sum_dy += dy[s, c, t]
            sum_dy_xhat += dy[s, c, t] * (x[s, c, t] - mean) * inv_std
    dgamma[c] = sum_dy_xhat
    dbeta[c] = sum_dy
    if need_dx:
        k = gamma[c] * inv_std
        for s in range(batch):
            for t in range(length):
                if training:
                    xhat = (x[s, c, t] - mean) * inv_std
                    dx[s, c, t] = k * (dy[s, c, t] - (sum_dy + xhat * sum_dy_xhat) / m)
                else:
                    dx[s, c, t] = k * dy[s, c, t]


def _bn_forward_launch(xs, params, y, ctx):
    x = _channels(xs[0])
    if ctx.training and x.shape[0] * x.shape[2] < 2:
        raise ValueError("batchnorm: training needs more than one value per channel (batch * length >= 2)")
    _bn_forward[grid(x.shape[1])](x, params[0], params[1], ctx.state[0], ctx.state[1], ctx.ws[0],
                                  ctx.settings, bool(ctx.training), _channels(y))


def _bn_backward_launch(xs, y, dy, dxs, need_dx, params, grads, ctx):
    x = _channels(xs[0])
    dx = _channels(dxs[0]) if need_dx else x
    _bn_backward[grid(x.shape[1])](x, _channels(dy), params[0], ctx.ws[0], bool(ctx.training), bool(need_dx),
                                   grads[0], grads[1], dx)


@cuda.jit
def _ln_forward(x, gamma, beta, affine, stats, settings, y):
    r = cuda.grid(1)
    rows, width = x.shape
    if r >= rows:
        return
    total = 0.0
    for j in range(width):
        total += x[r, j]
    mean = total / width
    squares = 0.0
    for j in range(width):
        e = x[r, j] - mean
        squares += e * e
    inv_std = 1.0 / math.sqrt(squares / width + settings[0])
    stats[0, r] = mean
    stats[1, r] = inv_std
    for j in range(width):
        value = (x[r, j] - mean) * inv_std
        y[r, j] = value * gamma[j] + beta[j] if affine else value


@cuda.jit
def _ln_input_delta(x, dy, gamma, affine, stats, dx):
    r = cuda.grid(1)
    rows, width = x.shape
    if r >= rows:
        return
    mean, inv_std = stats[0, r], stats[1, r]
    sum_g, sum_g_xhat = 0.0, 0.0
    for j in range(width):
        g = dy[r, j] * gamma[j] if affine else dy[r, j]
        sum_g += g
        sum_g_xhat += g * (x[r, j] - mean) * inv_std
    for j in range(width):
        g = dy[r, j] * gamma[j] if affine else dy[r, j]
        dx[r, j] = inv_std * (g - (sum_g + (x[r, j] - mean) * inv_std * sum_g_xhat) / width)


@cuda.jit
def _ln_grads(x, dy, stats, dgamma, dbeta):
    j = cuda.grid(1)
    rows, width = x.shape
    if j >= width:
        return
    sum_dy, sum_dy_xhat = 0.0, 0.0
    for r in range(rows):
        sum_dy += dy[r, j]
        sum_dy_xhat += dy[r, j] * (x[r, j] - stats[0, r]) * stats[1, r]
    dgamma[j] = sum_dy_xhat
    dbeta[j] = sum_dy


def _rows(array, ctx):
    """A device array as (normalised rows, width)."""
    rows = ctx.ws[0].shape[1]
    return array.reshape(rows, array.size // max(rows, 1))


def _affine(params, x):
    """``(gamma, beta, affine)``; without parameters, stand-ins the kernels never read."""
    return (flat(params[0]), flat(params[1]), True) if params else (x[0], x[0], False)


def _ln_forward_launch(xs, params, y, ctx):
    x = _rows(xs[0], ctx)
    gamma, beta, affine = _affine(params, x)
    _ln_forward[grid(x.shape[0])](x, gamma, beta, affine, ctx.ws[0], ctx.settings, _rows(y, ctx))


def _ln_backward_launch(xs, y, dy, dxs, need_dx, params, grads, ctx):
    x, d = _rows(xs[0], ctx), _rows(dy, ctx)
    gamma, _, affine = _affine(params, x)
    if need_dx:
        _ln_input_delta[grid(x.shape[0])](x, d, gamma, affine, ctx.ws[0], _rows(dxs[0], ctx))
    if grads:
        _ln_grads[grid(x.shape[1])](x, d, ctx.ws[0], flat(grads[0]), flat(grads[1]))


batchnorm = SimpleNamespace(forward=_bn_forward_launch, backward=_bn_backward_launch)
layernorm = SimpleNamespace(forward=_ln_forward_launch, backward=_ln_backward_launch)
