"""CUDA kernels of ``dense`` (y = x @ W.T + b), with and without bias.

Backward is two launches: the input delta from W as it was (the forward kernel on
W's transpose), then one thread per weight (and per bias) that sums its gradient over
the batch and applies the rule.
"""
from .api import cuda
from .launch import flat, grid
from .rules import updated


@cuda.jit
def _forward(x, W, b, has_bias, y):
    """``y = x @ W.T (+ b)``, one thread per output; with ``W.T`` in place of ``W`` it is
    the input delta ``dy @ W``."""
    i = cuda.grid(1)
    n_out, n_in = W.shape
    if i >= y.size:
        return
    s = i // n_out
    o = i - s * n_out
    acc = 0.0
    for j in range(n_in):
        acc += x[s, j] * W[o, j]
    y[s, o] = acc + b[o] if has_bias else acc


@cuda.jit
def _update(x, dy, W, b, has_bias, rule, hyper, state_W, state_b):
    i = cuda.grid(1)
    n_out, n_in = W.shape
    cols = n_in + 1 if has_bias else n_in
    if i >= n_out * cols:
        return
    o = i // cols
    j = i - o * cols
    g = 0.0
    if j < n_in:
        for s in range(x.shape[0]):
            g += dy[s, o] * x[s, j]
        W[o, j] = updated(rule, W[o, j], g, state_W, o * n_in + j, hyper)
    else:
        for s in range(x.shape[0]):
            g += dy[s, o]
        b[o] = updated(rule, b[o], g, state_b, o, hyper)


def _bias(params):
    """``(b, has_bias)``; without a bias, a 1-D stand-in the kernels never touch."""
    return (params[1], True) if len(params) == 2 else (flat(params[0]), False)


def forward(xs, params, y, ws):
    b, has_bias = _bias(params)
    _forward[grid(y.size)](xs[0], params[0], b, has_bias, y)


def backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    W = params[0]
    if need_dx:
        _forward[grid(dxs[0].size)](dy, W.T, flat(W), False, dxs[0])
    b, has_bias = _bias(params)
    cols = W.shape[1] + 1 if has_bias else W.shape[1]
    _update[grid(W.shape[0] * cols)](xs[0], dy, W, b, has_bias, rule, hyper, states[0], states[-1])
