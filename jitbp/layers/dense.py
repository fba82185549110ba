"""``dense``: y = x @ W.T + b, with W of shape (n_out, n_in)."""
import numpy as np
from numba import njit

from ..hookspecs import hookimpl
from ..kernels import updated
from ..layer import Layer, check_param, check_size

#: Below this many multiply-adds per call, plain loops beat a BLAS call's overhead.
BLAS_MIN_WORK = 32768
#: Gradient rows computed per BLAS tile: about 256 KiB of float64, so a tile is
#: updated while it is still in cache.
TILE_ELEMENTS = 32768


@njit(cache=True, inline="always")
def _uses_blas(n, n_in, n_out):
    return n > 2 and n * n_in * n_out >= BLAS_MIN_WORK


@njit(cache=True, inline="always")
def _forward(x, W, b, y, has_bias):
    n, n_in = x.shape
    n_out = W.shape[0]
    if _uses_blas(n, n_in, n_out):
        np.dot(x, W.T, y)
    else:
        for s in range(n):
            for o in range(n_out):
                acc = 0.0
                for j in range(n_in):
                    acc += x[s, j] * W[o, j]
                y[s, o] = acc
    if has_bias:
        for s in range(n):
            for o in range(n_out):
                y[s, o] += b[o]


@njit(cache=True, inline="always")
def _input_delta(dy, W, dx):
    n, n_out = dy.shape
    n_in = W.shape[1]
    if _uses_blas(n, n_in, n_out):
        np.dot(dy, W, dx)
        return
    dx[:] = 0.0
    for s in range(n):
        for o in range(n_out):
            d = dy[s, o]
            for j in range(n_in):
                dx[s, j] += d * W[o, j]


@njit(cache=True, inline="always")
def _update_weights(x, dy, W, rule, hyper, state, tile, dy_t):
    n, n_in = x.shape
    n_out = W.shape[0]
    if not _uses_blas(n, n_in, n_out):
        row = tile[0]
        for o in range(n_out):
            row[:] = 0.0
            for s in range(n):
                d = dy[s, o]
                for j in range(n_in):
                    row[j] += d * x[s, j]
            for j in range(n_in):
                W[o, j] = updated(rule, W[o, j], row[j], state, o * n_in + j, hyper)
        return
    dy_t[:, :] = dy.T
    rows = tile.shape[0]
    for o0 in range(0, n_out, rows):
        o1 = min(o0 + rows, n_out)
        g = tile[: o1 - o0]
        np.dot(dy_t[o0:o1], x, g)
        for o in range(o0, o1):
            for j in range(n_in):
                W[o, j] = updated(rule, W[o, j], g[o - o0, j], state, o * n_in + j, hyper)


@njit(cache=True, inline="always")
def _update_bias(dy, b, rule, hyper, state):
    n, n_out = dy.shape
    for o in range(n_out):
        g = 0.0
        for s in range(n):
            g += dy[s, o]
        b[o] = updated(rule, b[o], g, state, o, hyper)


@njit(cache=True)
def dense_forward(xs, params, y, ws):
    _forward(xs[0], params[0], params[1], y, True)


@njit(cache=True)
def dense_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    W, b = params
    if need_dx:
        _input_delta(dy, W, dxs[0])
    _update_weights(xs[0], dy, W, rule, hyper, states[0], ws[0], ws[1])
    _update_bias(dy, b, rule, hyper, states[1])


@njit(cache=True)
def dense_nobias_forward(xs, params, y, ws):
    W = params[0]
    _forward(xs[0], W, W[0], y, False)


@njit(cache=True)
def dense_nobias_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    W = params[0]
    if need_dx:
        _input_delta(dy, W, dxs[0])
    _update_weights(xs[0], dy, W, rule, hyper, states[0], ws[0], ws[1])


class Dense(Layer):
    """Fully connected layer."""

    kind = "dense"
    description = "fully connected: y = x @ W.T + b, W (n_out, n_in), b (n_out,)"
    forward_kernel, backward_kernel = dense_forward, dense_backward

    def __init__(self, n_in, n_out, bias=True, W=None, b=None, seed=None, name=None):
        super().__init__(name=name)
        self.n_in = check_size("n_in", n_in)
        self.n_out = check_size("n_out", n_out)
        self.bias = bool(bias)
        if not bias and b is not None:
            raise ValueError("dense: b given but bias=False")
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.n_in)
        shape = (self.n_out, self.n_in)
        self.params["W"] = (rng.uniform(-bound, bound, shape) if W is None
                            else check_param("dense W", W, shape))
        if self.bias:
            self.params["b"] = (rng.uniform(-bound, bound, self.n_out) if b is None
                                else check_param("dense b", b, (self.n_out,)))
        else:
            self.forward_kernel, self.backward_kernel = dense_nobias_forward, dense_nobias_backward

    def input_shape(self):
        return (self.n_in,)

    def output_shape(self, input_shapes):
        return (self.n_out,)

    def workspace_shapes(self, batch, input_shapes):
        rows = max(1, min(self.n_out, TILE_ELEMENTS // self.n_in))
        return ((rows, self.n_in), (self.n_out, batch))

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out, "bias": self.bias}


@hookimpl
def register_layers(register):
    register(Dense)
