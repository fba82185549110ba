"""The optimizers' update rules as CUDA device functions.

Same rule ids, hyper-parameter slots and formulas as :mod:`jitbp.kernels` (the CPU
rules): a device kernel computes one element's gradient and stores
``updated(rule, p, g, state, i, hyper)`` in place of a gradient buffer.
"""
import math

from .. import kernels as k
from .api import cuda
from .launch import flat, grid


@cuda.jit(device=True)
def _sgd(p, g, state, i, hyper):
    if hyper[k.SGD_WD] != 0.0:
        g = g + hyper[k.SGD_WD] * p
    momentum = hyper[k.SGD_MOMENTUM]
    if momentum != 0.0:
        if hyper[k.SGD_FIRST] != 0.0:
            state[0, i] = g
        else:
            state[0, i] = momentum * state[0, i] + (1.0 - hyper[k.SGD_DAMPENING]) * g
        buf = state[0, i]
        if hyper[k.SGD_NESTEROV] != 0.0:
            g = g + momentum * buf
        else:
            g = buf
    return p - hyper[k.SGD_LR] * g


@cuda.jit(device=True)
def _adam(p, g, state, i, hyper):
    if hyper[k.ADAM_WD] != 0.0:
        g = g + hyper[k.ADAM_WD] * p
    b1 = hyper[k.ADAM_B1]
    b2 = hyper[k.ADAM_B2]
    state[0, i] = state[0, i] + (1.0 - b1) * (g - state[0, i])
    state[1, i] = b2 * state[1, i] + (1.0 - b2) * g * g
    denom = math.sqrt(state[1, i]) / hyper[k.ADAM_BC2_SQRT] + hyper[k.ADAM_EPS]
    return p - (hyper[k.ADAM_LR] / hyper[k.ADAM_BC1]) * (state[0, i] / denom)


@cuda.jit(device=True)
def _rmsprop(p, g, state, i, hyper):
    if hyper[k.RMS_WD] != 0.0:
        g = g + hyper[k.RMS_WD] * p
    alpha = hyper[k.RMS_ALPHA]
    state[0, i] = alpha * state[0, i] + (1.0 - alpha) * g * g
    return p - hyper[k.RMS_LR] * (g / (math.sqrt(state[0, i]) + hyper[k.RMS_EPS]))


@cuda.jit(device=True)
def _adagrad(p, g, state, i, hyper):
    if hyper[k.ADAGRAD_WD] != 0.0:
        g = g + hyper[k.ADAGRAD_WD] * p
    state[0, i] = state[0, i] + g * g
    return p - hyper[k.ADAGRAD_CLR] * (g / (math.sqrt(state[0, i]) + hyper[k.ADAGRAD_EPS]))


@cuda.jit(device=True)
def updated(rule, p, g, state, i, hyper):
    """The new value of parameter element ``p`` (flat index ``i``) given its gradient ``g``."""
    if rule == k.SGD:
        return _sgd(p, g, state, i, hyper)
    if rule == k.ADAM:
        return _adam(p, g, state, i, hyper)
    if rule == k.RMSPROP:
        return _rmsprop(p, g, state, i, hyper)
    if rule == k.ADAGRAD:
        return _adagrad(p, g, state, i, hyper)
    state[0, i] += g
    return p


@cuda.jit
def _apply_and_clear(rule, param, grad, state, hyper):
    i = cuda.grid(1)
    if i < param.size:
        param[i] = updated(rule, param[i], grad[i], state, i, hyper)
        grad[i] = 0.0


def apply_gradient(rule, param, grad, state, hyper):
    """Apply ``rule`` to ``param`` from the gradient buffer ``grad``, then zero ``grad``."""
    param, grad = flat(param), flat(grad)
    _apply_and_clear[grid(param.size)](rule, param, grad, state, hyper)
