"""Loss kernels on the device: each writes dL/d(output) and per-sample partial sums,
then one block adds the partials into a scalar that is copied to the host.

Same formulas as :mod:`jitbp.losses`; cross-entropy's per-sample math is its ``@scalar``
source compiled for the device.
"""
import math

import numpy as np

from ..losses import BCE_EPS, BCE_LOG_FLOOR, cross_entropy_sample
from ..scalar import on_cuda
from .api import cuda
from .launch import grid, rows

SQUARED, ABSOLUTE, BCE = range(3)
#: name: (pointwise kind, delta coefficient, whether the loss averages over all elements,
#: factor on the summed partials)
POINTWISE = {
    "sse": (SQUARED, 2.0, False, 1.0),
    "half_sse": (SQUARED, 1.0, False, 0.5),
    "mse": (SQUARED, 2.0, True, 1.0),
    "mae": (ABSOLUTE, 1.0, True, 1.0),
    "bce": (BCE, 1.0, True, 1.0),
}
#: Most threads of the single block that sums the partials (a power of two).
REDUCE_THREADS = 256


@cuda.jit
def _pointwise(kind, coef, scale, yhat, target, delta, partials):
    s = cuda.grid(1)
    if s >= yhat.shape[0]:
        return
    total = 0.0
    for j in range(yhat.shape[1]):
        p = yhat[s, j]
        t = target[s, j]
        if kind == BCE:
            log_p = max(math.log(p), BCE_LOG_FLOOR) if p > 0.0 else BCE_LOG_FLOOR
            log_q = max(math.log(1.0 - p), BCE_LOG_FLOOR) if p < 1.0 else BCE_LOG_FLOOR
            total -= t * log_p + (1.0 - t) * log_q
            delta[s, j] = (p - t) / max((1.0 - p) * p, BCE_EPS) * scale
        else:
            e = p - t
            if kind == SQUARED:
                total += e * e
                delta[s, j] = coef * e * scale
            else:
                total += abs(e)
                delta[s, j] = (1.0 if e > 0.0 else (-1.0 if e < 0.0 else 0.0)) * scale
    partials[s] = total


_cross_entropy_sample = on_cuda(cross_entropy_sample)


@cuda.jit
def _cross_entropy(logits, labels, delta, partials):
    s = cuda.grid(1)
    n = logits.shape[0]
    if s < n:
        partials[s] = _cross_entropy_sample(logits, s, labels[s], 1.0, 1.0 / n, delta)


@cuda.jit
def _sum(partials, out):
    cache = cuda.shared.array(REDUCE_THREADS, np.float64)
    t = cuda.threadIdx.x
    threads = cuda.blockDim.x
    acc = 0.0
    for i in range(t, partials.size, threads):
        acc += partials[i]
    cache[t] = acc
    cuda.syncthreads()
    step = threads // 2
    while step > 0:
        if t < step:
            cache[t] += cache[t + step]
        cuda.syncthreads()
        step //= 2
    if t == 0:
        out[0] = cache[0]


def _reduce_threads(n):
    """The largest power of two <= min(n, REDUCE_THREADS): the tree halves it to one."""
    return 1 << (min(n, REDUCE_THREADS).bit_length() - 1)


class Pointwise:
    """The launcher of one built-in element-wise loss (``jitbp.cuda.losses.<name>``)."""

    def __init__(self, name):
        self.kind, self.coef, self.mean, self.factor = POINTWISE[name]

    def __call__(self, output, target, delta, partials):
        scale = 1.0 / output.size if self.mean else 1.0
        _pointwise[grid(output.shape[0])](self.kind, self.coef, scale, output, rows(target), delta, partials)
        return self.factor * scale


def cross_entropy(output, target, delta, partials):
    """The launcher of ``cross_entropy``."""
    _cross_entropy[grid(output.shape[0])](output, target, delta, partials)
    return 1.0 / output.shape[0]


sse, half_sse, mse, mae, bce = (Pointwise(name) for name in ("sse", "half_sse", "mse", "mae", "bce"))


def loss_value(loss, output, target, delta, partials, out):
    """The value of ``loss`` (a :class:`jitbp.losses.Loss`, through its ``cuda`` launcher);
    writes dL/d(output) into ``delta``.

    ``partials`` (batch,) and ``out`` (1,) are float64 device scratch arrays.
    """
    n = output.shape[0]
    factor = loss.cuda_launcher()(rows(output), target, rows(delta), partials)
    _sum[1, _reduce_threads(n)](partials, out)
    return float(out.copy_to_host()[0]) * factor
