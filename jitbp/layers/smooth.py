"""Smooth and leaky element-wise activations (free tier): leaky_relu, elu, gelu, silu, softplus.

Each one's value and derivative are written once as ``@scalar`` functions of
``(x, a, b)``, ``a`` and ``b`` being the layer's two settings (unused ones are 0): the
CPU kernels here call them directly, the CUDA twins (:mod:`jitbp.cuda.smooth`)
through :func:`jitbp.scalar.on_cuda`. Formulas as ``torch.nn.functional``.
"""
import math

from numba import njit

from ..hookspecs import hookimpl
from ..layer import FREE, Layer
from ..scalar import scalar
from .numbers import check_number

SQRT_HALF = 0.7071067811865476
#: 1 / sqrt(2 pi) and sqrt(2 / pi)
INV_SQRT_2PI, SQRT_2_OVER_PI = 0.3989422804014327, 0.7978845608028654
GELU_CUBIC = 0.044715


@scalar
def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@scalar
def leaky_relu_value(x, slope, unused):
    return x if x > 0.0 else x * slope


@scalar
def leaky_relu_slope(x, slope, unused):
    return 1.0 if x > 0.0 else slope


@scalar
def elu_value(x, alpha, unused):
    return x if x > 0.0 else alpha * math.expm1(x)


@scalar
def elu_slope(x, alpha, unused):
    return 1.0 if x > 0.0 else alpha * math.exp(x)


@scalar
def gelu_value(x, tanh_form, unused):
    if tanh_form != 0.0:
        return 0.5 * x * (1.0 + math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)))
    return 0.5 * x * (1.0 + math.erf(x * SQRT_HALF))


@scalar
def gelu_slope(x, tanh_form, unused):
    if tanh_form != 0.0:
        t = math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x)
    return 0.5 * (1.0 + math.erf(x * SQRT_HALF)) + x * INV_SQRT_2PI * math.exp(-0.5 * x * x)


@scalar
def silu_value(x, unused_a, unused_b):
    return x * sigmoid(x)


@scalar
def silu_slope(x, unused_a, unused_b):
    s = sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


@scalar
def softplus_value(x, beta, threshold):
    bx = beta * x
    return x if bx > threshold else math.log1p(math.exp(bx)) / beta


@scalar
def softplus_slope(x, beta, threshold):
    bx = beta * x
    if bx > threshold:
        return 1.0
    z = math.exp(bx)
    return z / (z + 1.0)


# -- CPU kernels: one pair per layer, each a flat loop over the batch ------------------------------


@njit(cache=True, inline="always", error_model="numpy")
def _settings(ctx):
    s = ctx.settings
    return (s[0] if s.size > 0 else 0.0), (s[1] if s.size > 1 else 0.0)


@njit(cache=True, error_model="numpy")
def leaky_relu_forward(xs, y, ctx):
    a, b = _settings(ctx)
    x, out = xs[0].reshape(-1), y.reshape(-1)
    for i in range(out.size):
        out[i] = leaky_relu_value(x[i], a, b)


@njit(cache=True, error_model="numpy")
def leaky_relu_backward(xs, y, dy, dxs, ctx):
    a, b = _settings(ctx)
    x, d, dx = xs[0].reshape(-1), dy.reshape(-1), dxs[0].reshape(-1)
    for i in range(dx.size):
        dx[i] = d[i] * leaky_relu_slope(x[i], a, b)


@njit(cache=True, error_model="numpy")
def elu_forward(xs, y, ctx):
    a, b = _settings(ctx)
    x, out = xs[0].reshape(-1), y.reshape(-1)
    for i in range(out.size):
        out[i] = elu_value(x[i], a, b)


@njit(cache=True, error_model="numpy")
def elu_backward(xs, y, dy, dxs, ctx):
    a, b = _settings(ctx)
    x, d, dx = xs[0].reshape(-1), dy.reshape(-1), dxs[0].reshape(-1)
    for i in range(dx.size):
        dx[i] = d[i] * elu_slope(x[i], a, b)


@njit(cache=True, error_model="numpy")
def gelu_forward(xs, y, ctx):
    a, b = _settings(ctx)
    x, out = xs[0].reshape(-1), y.reshape(-1)
    for i in range(out.size):
        out[i] = gelu_value(x[i], a, b)


@njit(cache=True, error_model="numpy")
def gelu_backward(xs, y, dy, dxs, ctx):
    a, b = _settings(ctx)
    x, d, dx = xs[0].reshape(-1), dy.reshape(-1), dxs[0].reshape(-1)
    for i in range(dx.size):
        dx[i] = d[i] * gelu_slope(x[i], a, b)


@njit(cache=True, error_model="numpy")
def silu_forward(xs, y, ctx):
    x, out = xs[0].reshape(-1), y.reshape(-1)
    for i in range(out.size):
        out[i] = silu_value(x[i], 0.0, 0.0)


@njit(cache=True, error_model="numpy")
def silu_backward(xs, y, dy, dxs, ctx):
    x, d, dx = xs[0].reshape(-1), dy.reshape(-1), dxs[0].reshape(-1)
    for i in range(dx.size):
        dx[i] = d[i] * silu_slope(x[i], 0.0, 0.0)


@njit(cache=True, error_model="numpy")
def softplus_forward(xs, y, ctx):
    a, b = _settings(ctx)
    x, out = xs[0].reshape(-1), y.reshape(-1)
    for i in range(out.size):
        out[i] = softplus_value(x[i], a, b)


@njit(cache=True, error_model="numpy")
def softplus_backward(xs, y, dy, dxs, ctx):
    a, b = _settings(ctx)
    x, d, dx = xs[0].reshape(-1), dy.reshape(-1), dxs[0].reshape(-1)
    for i in range(dx.size):
        dx[i] = d[i] * softplus_slope(x[i], a, b)


# -- the layers ------------------------------------------------------------------------------------


class Smooth(Layer):
    """A free-tier element-wise activation whose settings are its constructor's floats."""

    tier = FREE
    kept_workspaces = ()

    def config(self):
        return self.settings()


class LeakyReLU(Smooth):
    kind = "leaky_relu"
    description = "x where x > 0, else negative_slope * x (torch.nn.LeakyReLU)"
    forward_kernel, backward_kernel = leaky_relu_forward, leaky_relu_backward
    cuda_kernels = "jitbp.cuda.smooth.leaky_relu"

    def __init__(self, negative_slope=0.01, *, name=None):
        super().__init__(name=name)
        self.negative_slope = check_number("leaky_relu", "negative_slope", negative_slope)

    def settings(self):
        return {"negative_slope": self.negative_slope}


class ELU(Smooth):
    kind = "elu"
    description = "x where x > 0, else alpha * (exp(x) - 1) (torch.nn.ELU)"
    forward_kernel, backward_kernel = elu_forward, elu_backward
    cuda_kernels = "jitbp.cuda.smooth.elu"

    def __init__(self, alpha=1.0, *, name=None):
        super().__init__(name=name)
        self.alpha = check_number("elu", "alpha", alpha)

    def settings(self):
        return {"alpha": self.alpha}


class GELU(Smooth):
    kind = "gelu"
    description = "x * Phi(x), exact (erf) or with approximate='tanh' (torch.nn.GELU)"
    forward_kernel, backward_kernel = gelu_forward, gelu_backward
    cuda_kernels = "jitbp.cuda.smooth.gelu"
    APPROXIMATIONS = ("none", "tanh")

    def __init__(self, approximate="none", *, name=None):
        super().__init__(name=name)
        if approximate not in self.APPROXIMATIONS:
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def settings(self):
        return {"tanh": int(self.approximate == "tanh")}

    def config(self):
        return {"approximate": self.approximate}


class SiLU(Smooth):
    kind = "silu"
    description = "x * sigmoid(x), also called swish (torch.nn.SiLU)"
    forward_kernel, backward_kernel = silu_forward, silu_backward
    cuda_kernels = "jitbp.cuda.smooth.silu"


class Softplus(Smooth):
    kind = "softplus"
    description = "log(1 + exp(beta * x)) / beta, x where beta * x > threshold (torch.nn.Softplus)"
    forward_kernel, backward_kernel = softplus_forward, softplus_backward
    cuda_kernels = "jitbp.cuda.smooth.softplus"

    def __init__(self, beta=1.0, threshold=20.0, *, name=None):
        super().__init__(name=name)
        self.beta = check_number("softplus", "beta", beta, low=0.0, include_low=False)
        self.threshold = check_number("softplus", "threshold", threshold)

    def settings(self):
        return {"beta": self.beta, "threshold": self.threshold}


@hookimpl
def register_layers(register):
    for cls in (LeakyReLU, ELU, GELU, SiLU, Softplus):
        register(cls)
