"""``dense``: y = x @ W.T + b, with W of shape (n_out, n_in)."""
import numpy as np
from numba import njit

from ..blas import add_dyt_x
from ..checks import as_dtype
from ..hookspecs import hookimpl
from ..init import check_init, draw
from ..kernels import ACCUMULATE, plain_sgd_lr, update_row, updated
from ..layer import Layer, check_param, check_size, uniform

#: Below this many multiply-adds per call (batch x n_in x n_out), plain loops beat a
#: BLAS call's overhead.
BLAS_MIN_WORK = 32768
#: Layers with at most this many weights get loop-only kernels, small enough for the
#: captured epoch to inline (``Layer.inline_kernels``): the seeds' 2-2-2 network runs
#: about 40% faster that way.
TINY_WEIGHTS = 64
#: Up to this many multiply-adds, backward works element by element with no array views
#: (view reference counting dominates tiny layers such as the seeds' 2-2-2 network).
SMALL_MAX_WORK = 256
#: Up to this many samples, backward streams W once: input delta, gradient row and
#: update per row of W. Larger batches use BLAS tiles.
STREAM_MAX_BATCH = 4
#: Gradient elements computed per BLAS tile (512 KiB in float32, 1 MiB in float64):
#: large enough for an efficient GEMM, small enough to be updated while in cache.
TILE_ELEMENTS = 131072


@njit(cache=True, inline="always", error_model="numpy")
def _forward_loops(x, W, y):
    for s in range(x.shape[0]):
        for o in range(W.shape[0]):
            acc = 0.0
            for j in range(x.shape[1]):
                acc += x[s, j] * W[o, j]
            y[s, o] = acc


@njit(cache=True, inline="always", error_model="numpy")
def _forward(x, W, b, y, has_bias):
    n, n_in = x.shape
    n_out = W.shape[0]
    if n * n_in * n_out >= BLAS_MIN_WORK:
        np.dot(x, W.T, y)
    else:
        _forward_loops(x, W, y)
    if has_bias:
        for s in range(n):
            for o in range(n_out):
                y[s, o] += b[o]


@njit(cache=True, inline="always", error_model="numpy")
def _backward_small(x, dy, W, dx, need_dx, rule, hyper, state):
    """Element by element, without array views: the fastest form for tiny layers.
    Plain SGD is applied in place; other rules go through ``updated``."""
    n, n_in = x.shape
    lr = W.dtype.type(plain_sgd_lr(rule, hyper))
    if need_dx:
        for s in range(n):
            for j in range(n_in):
                dx[s, j] = 0.0
    for o in range(W.shape[0]):
        for j in range(n_in):
            g = 0.0
            for s in range(n):
                g += dy[s, o] * x[s, j]
                if need_dx:
                    dx[s, j] += dy[s, o] * W[o, j]
            if lr >= 0.0:
                W[o, j] = W[o, j] - lr * g
            else:
                W[o, j] = updated(rule, W[o, j], g, state, o * n_in + j, hyper)


@njit(cache=True, inline="always", error_model="numpy")
def _backward_online_sgd(x, dy, W, dx, need_dx, lr):
    """One sample, plain SGD: a single pass reads each weight for the input delta, then
    updates it. Rows go four at a time, so the input delta is loaded and stored once
    per four rows (a third faster on the MLP's hidden layer)."""
    xs, rate = x[0], W.dtype.type(lr)
    n_out = W.shape[0]
    if not need_dx:
        for o in range(n_out):
            w = W[o]
            step = rate * dy[0, o]
            for j in range(w.size):
                w[j] -= step * xs[j]
        return
    delta = dx[0]
    delta[:] = 0.0
    o = 0
    while o + 4 <= n_out:  # a stepped range() here keeps the inner loop from vectorizing
        w0 = W[o]
        w1 = W[o + 1]
        w2 = W[o + 2]
        w3 = W[o + 3]
        d0 = dy[0, o]
        d1 = dy[0, o + 1]
        d2 = dy[0, o + 2]
        d3 = dy[0, o + 3]
        s0 = rate * d0
        s1 = rate * d1
        s2 = rate * d2
        s3 = rate * d3
        for j in range(w0.size):
            delta[j] += d0 * w0[j] + d1 * w1[j] + d2 * w2[j] + d3 * w3[j]
            xj = xs[j]
            w0[j] -= s0 * xj
            w1[j] -= s1 * xj
            w2[j] -= s2 * xj
            w3[j] -= s3 * xj
        o += 4
    for o in range(o, n_out):
        w = W[o]
        d = dy[0, o]
        step = rate * d
        for j in range(w.size):
            delta[j] += d * w[j]
            w[j] -= step * xs[j]


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _online_sgd_then_forward(x, dy, W, b, dx, need_dx, lr, x_next, y_next, has_bias):
    """One sample's plain-SGD backward and the next sample's forward in one pass over
    W: each row gives its share of the input delta, is updated, then meets the next
    input (the dot product is reassociated so it vectorizes)."""
    xs, xn, rate = x[0], x_next[0], W.dtype.type(lr)
    delta = dx[0]
    if need_dx:
        delta[:] = 0.0
    for o in range(W.shape[0]):
        w = W[o]
        d = dy[0, o]
        step = rate * d
        acc = W.dtype.type(0.0)
        if need_dx:
            for j in range(w.size):
                delta[j] += d * w[j]
                new = w[j] - step * xs[j]
                w[j] = new
                acc += new * xn[j]
        else:
            for j in range(w.size):
                new = w[j] - step * xs[j]
                w[j] = new
                acc += new * xn[j]
        if has_bias:
            b[o] = b[o] - rate * d
            acc += b[o]
        y_next[0, o] = acc


@njit(cache=True, inline="always", error_model="numpy")
def _backward_streaming(x, dy, W, dx, need_dx, rule, hyper, state, row):
    """One pass over W: each row feeds the input delta before it is updated."""
    n, n_in = x.shape
    lr = plain_sgd_lr(rule, hyper)
    if n == 1 and lr >= 0.0:
        _backward_online_sgd(x, dy, W, dx, need_dx, lr)
        return
    if need_dx:
        dx[:, :] = 0.0
    for o in range(W.shape[0]):
        w = W[o]
        for s in range(n):
            d = dy[s, o]
            if need_dx:
                delta = dx[s]
                for j in range(n_in):
                    delta[j] += d * w[j]
            xs = x[s]
            if s == 0:
                for j in range(n_in):
                    row[j] = d * xs[j]
            else:
                for j in range(n_in):
                    row[j] += d * xs[j]
        update_row(rule, w, row, state, o * n_in, hyper)


@njit(cache=True, inline="always", error_model="numpy")
def _backward_tiled(x, dy, W, dx, need_dx, rule, hyper, state, tile, dy_t):
    """Input delta by one GEMM with the old W; then the weights. Plain SGD and gradient
    accumulation are one GEMM straight into W (or the gradient); other rules get the
    gradient a tile at a time and update it while it is in cache."""
    n_in = x.shape[1]
    n_out = W.shape[0]
    if need_dx:
        np.dot(dy, W, dx)
    lr = plain_sgd_lr(rule, hyper)
    if lr >= 0.0:
        add_dyt_x(-lr, dy, x, W, 1.0)
        return
    if rule == ACCUMULATE:
        add_dyt_x(1.0, dy, x, state[0].reshape(W.shape), 1.0)
        return
    dy_t[:, :] = dy.T
    rows = tile.shape[0]
    for o0 in range(0, n_out, rows):
        o1 = min(o0 + rows, n_out)
        g = tile[: o1 - o0]
        np.dot(dy_t[o0:o1], x, g)
        for o in range(o0, o1):
            update_row(rule, W[o], g[o - o0], state, o * n_in, hyper)


@njit(cache=True, inline="always", error_model="numpy")
def _backward(x, dy, W, dx, need_dx, rule, hyper, state, ws):
    n, n_in = x.shape
    if n * n_in * W.shape[0] <= SMALL_MAX_WORK:
        _backward_small(x, dy, W, dx, need_dx, rule, hyper, state)
    elif n <= STREAM_MAX_BATCH:
        _backward_streaming(x, dy, W, dx, need_dx, rule, hyper, state, ws[0][0])
    else:
        _backward_tiled(x, dy, W, dx, need_dx, rule, hyper, state, ws[0], ws[1])


@njit(cache=True, inline="always", error_model="numpy")
def _update_bias_small(dy, b, rule, hyper, state):
    lr = b.dtype.type(plain_sgd_lr(rule, hyper))
    for o in range(dy.shape[1]):
        g = 0.0
        for s in range(dy.shape[0]):
            g += dy[s, o]
        b[o] = b[o] - lr * g if lr >= 0.0 else updated(rule, b[o], g, state, o, hyper)


@njit(cache=True, inline="always", error_model="numpy")
def _update_bias(dy, b, rule, hyper, state, grad):
    n, n_out = dy.shape
    if n * n_out < BLAS_MIN_WORK:
        _update_bias_small(dy, b, rule, hyper, state)
        return
    grad[:] = 0.0
    for s in range(n):
        for o in range(n_out):
            grad[o] += dy[s, o]
    update_row(rule, b, grad, state, 0, hyper)


@njit(cache=True, error_model="numpy")
def dense_forward(xs, params, y, ws):
    _forward(xs[0], params[0], params[1], y, True)


@njit(cache=True, error_model="numpy")
def dense_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    W, b = params
    _backward(xs[0], dy, W, dxs[0], need_dx, rule, hyper, states[0], ws)
    _update_bias(dy, b, rule, hyper, states[1], ws[2][0])


@njit(cache=True, inline="always", error_model="numpy")
def _backward_then_forward(xs, dy, dxs, need_dx, W, b, rule, hyper, states, ws, next_xs, next_y, has_bias):
    """One pass over W for online plain SGD; otherwise the backward, then the forward."""
    x, x_next = xs[0], next_xs[0]
    lr = plain_sgd_lr(rule, hyper)
    if x.shape[0] == 1 and x_next.shape[0] == 1 and lr >= 0.0:
        _online_sgd_then_forward(x, dy, W, b, dxs[0], need_dx, lr, x_next, next_y, has_bias)
        return
    _backward(x, dy, W, dxs[0], need_dx, rule, hyper, states[0], ws)
    if has_bias:
        _update_bias(dy, b, rule, hyper, states[-1], ws[2][0])
    _forward(x_next, W, b, next_y, has_bias)


@njit(cache=True, error_model="numpy")
def dense_backward_forward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws, next_xs, next_y):
    _backward_then_forward(xs, dy, dxs, need_dx, params[0], params[1], rule, hyper, states, ws, next_xs, next_y,
                           True)


@njit(cache=True, error_model="numpy")
def dense_nobias_backward_forward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws, next_xs, next_y):
    W = params[0]
    _backward_then_forward(xs, dy, dxs, need_dx, W, W[0], rule, hyper, states, ws, next_xs, next_y, False)


@njit(cache=True, error_model="numpy")
def dense_tiny_forward(xs, params, y, ws):
    _forward_loops(xs[0], params[0], y)
    for s in range(y.shape[0]):
        for o in range(y.shape[1]):
            y[s, o] += params[1][o]


@njit(cache=True, error_model="numpy")
def dense_tiny_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    W, b = params
    _backward_small(xs[0], dy, W, dxs[0], need_dx, rule, hyper, states[0])
    _update_bias_small(dy, b, rule, hyper, states[1])


@njit(cache=True, error_model="numpy")
def dense_tiny_nobias_forward(xs, params, y, ws):
    _forward_loops(xs[0], params[0], y)


@njit(cache=True, error_model="numpy")
def dense_tiny_nobias_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    _backward_small(xs[0], dy, params[0], dxs[0], need_dx, rule, hyper, states[0])


@njit(cache=True, error_model="numpy")
def dense_nobias_forward(xs, params, y, ws):
    W = params[0]
    _forward(xs[0], W, W[0], y, False)


@njit(cache=True, error_model="numpy")
def dense_nobias_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    _backward(xs[0], dy, params[0], dxs[0], need_dx, rule, hyper, states[0], ws)


class Dense(Layer):
    """Fully connected layer."""

    kind = "dense"
    description = "fully connected: y = x @ W.T + b, W (n_out, n_in), b (n_out,)"
    forward_kernel, backward_kernel = dense_forward, dense_backward
    cuda_kernels = "jitbp.cuda.dense"

    def __init__(self, n_in, n_out, bias=True, W=None, b=None, seed=None, name=None, dtype=np.float64,
                 init="uniform"):
        super().__init__(name=name)
        self.dtype = as_dtype(dtype)
        self.n_in = check_size("n_in", n_in)
        self.n_out = check_size("n_out", n_out)
        self.bias = bool(bias)
        self.init = check_init(init)
        if not bias and b is not None:
            raise ValueError("dense: b given but bias=False")
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.n_in)
        shape = (self.n_out, self.n_in)
        if W is not None:
            self.params["W"] = check_param("dense W", W, shape).astype(self.dtype)
        elif init == "uniform":
            self.params["W"] = uniform(rng, bound, shape, self.dtype)
        else:
            self.params["W"] = draw(rng, init, shape, self.n_in, self.n_out, self.dtype)
        if self.bias:
            self.params["b"] = (check_param("dense b", b, (self.n_out,)).astype(self.dtype) if b is not None
                                else uniform(rng, bound, (self.n_out,), self.dtype) if init == "uniform"
                                else np.zeros(self.n_out, self.dtype))
        tiny = self.n_in * self.n_out <= TINY_WEIGHTS
        self.forward_kernel, self.backward_kernel, _ = KERNELS[self.bias, tiny]
        self.inline_kernels = tiny

    @property
    def backward_forward_kernel(self):
        """The fused kernel while this layer still runs dense's own kernels; ``None`` once
        a subclass replaces one of them (the fused kernel would bypass it)."""
        forward, backward, fused = KERNELS[self.bias, self.inline_kernels]
        return fused if self.forward_kernel is forward and self.backward_kernel is backward else None

    def input_shape(self):
        return (self.n_in,)

    def output_shape(self, input_shapes):
        return (self.n_out,)

    def workspace_shapes(self, batch, input_shapes):
        rows = max(1, min(self.n_out, TILE_ELEMENTS // self.n_in))
        return ((rows, self.n_in), (self.n_out, batch), (1, self.n_out))

    def config(self):
        config = {"n_in": self.n_in, "n_out": self.n_out, "bias": self.bias, "dtype": np.dtype(self.dtype).name}
        if self.init != "uniform":  # model files from before init= stay byte-identical
            config["init"] = self.init
        return config

    @classmethod
    def param_shapes(cls, n_in, n_out, bias=True, **_):
        shape = (check_size("n_in", n_in), check_size("n_out", n_out))[::-1]
        return {"W": shape, "b": shape[:1]} if bias else {"W": shape}


#: (bias, tiny) -> (forward, backward, backward then next forward)
KERNELS = {
    (True, False): (dense_forward, dense_backward, dense_backward_forward),
    (False, False): (dense_nobias_forward, dense_nobias_backward, dense_nobias_backward_forward),
    (True, True): (dense_tiny_forward, dense_tiny_backward, None),
    (False, True): (dense_tiny_nobias_forward, dense_tiny_nobias_backward, None),
}


@hookimpl
def register_layers(register):
    register(Dense)
