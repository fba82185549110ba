"""Numba helpers shared by every layer kernel: the fused optimizer update rules.

A derivative kernel computes the gradient ``g`` of one parameter element and hands
it to :func:`updated`, which applies the optimizer's rule in place of a gradient
buffer. The rule is chosen by an integer id rather than by passing a jitted
function: Numba cannot cache kernels that take a dispatcher argument (the cache key
holds the dispatcher's identity, so every process recompiles), while an int keeps
one cached compilation per layer and dtype. See docs/architecture.md.
"""
import numpy as np
from numba import njit

#: Rule ids. ``ACCUMULATE`` adds ``g`` to ``state[0, i]`` and leaves the parameter alone:
#: the engine uses it for :meth:`Network.gradients` and for shared parameters.
ACCUMULATE, SGD, ADAM, RMSPROP, ADAGRAD = 0, 1, 2, 3, 4

#: Hyper-parameter slots, per rule (float64 array passed to the kernels).
SGD_LR, SGD_MOMENTUM, SGD_DAMPENING, SGD_NESTEROV, SGD_WD, SGD_FIRST = range(6)
ADAM_LR, ADAM_B1, ADAM_B2, ADAM_EPS, ADAM_WD, ADAM_BC1, ADAM_BC2_SQRT = range(7)
RMS_LR, RMS_ALPHA, RMS_EPS, RMS_WD = range(4)
ADAGRAD_CLR, ADAGRAD_EPS, ADAGRAD_WD = range(3)

NO_STATE = np.zeros((0, 0))
NO_HYPER = np.zeros(0)


@njit(cache=True, inline="always")
def _sgd(p, g, state, i, hyper):
    if hyper[SGD_WD] != 0.0:
        g = g + hyper[SGD_WD] * p
    momentum = hyper[SGD_MOMENTUM]
    if momentum != 0.0:
        if hyper[SGD_FIRST] != 0.0:
            state[0, i] = g
        else:
            state[0, i] = momentum * state[0, i] + (1.0 - hyper[SGD_DAMPENING]) * g
        buf = state[0, i]
        if hyper[SGD_NESTEROV] != 0.0:
            g = g + momentum * buf
        else:
            g = buf
    return p - hyper[SGD_LR] * g


@njit(cache=True, inline="always")
def _adam(p, g, state, i, hyper):
    if hyper[ADAM_WD] != 0.0:
        g = g + hyper[ADAM_WD] * p
    b1 = hyper[ADAM_B1]
    b2 = hyper[ADAM_B2]
    state[0, i] = state[0, i] + (1.0 - b1) * (g - state[0, i])
    state[1, i] = b2 * state[1, i] + (1.0 - b2) * g * g
    denom = np.sqrt(state[1, i]) / hyper[ADAM_BC2_SQRT] + hyper[ADAM_EPS]
    return p - (hyper[ADAM_LR] / hyper[ADAM_BC1]) * (state[0, i] / denom)


@njit(cache=True, inline="always")
def _rmsprop(p, g, state, i, hyper):
    if hyper[RMS_WD] != 0.0:
        g = g + hyper[RMS_WD] * p
    alpha = hyper[RMS_ALPHA]
    state[0, i] = alpha * state[0, i] + (1.0 - alpha) * g * g
    return p - hyper[RMS_LR] * (g / (np.sqrt(state[0, i]) + hyper[RMS_EPS]))


@njit(cache=True, inline="always")
def _adagrad(p, g, state, i, hyper):
    if hyper[ADAGRAD_WD] != 0.0:
        g = g + hyper[ADAGRAD_WD] * p
    state[0, i] = state[0, i] + g * g
    return p - hyper[ADAGRAD_CLR] * (g / (np.sqrt(state[0, i]) + hyper[ADAGRAD_EPS]))


@njit(cache=True, inline="always")
def updated(rule, p, g, state, i, hyper):
    """The new value of parameter element ``p`` (flat index ``i``) given its gradient ``g``.

    ``state`` is the optimizer's (slots, param.size) array for this parameter.
    """
    if rule == SGD:
        return _sgd(p, g, state, i, hyper)
    if rule == ADAM:
        return _adam(p, g, state, i, hyper)
    if rule == RMSPROP:
        return _rmsprop(p, g, state, i, hyper)
    if rule == ADAGRAD:
        return _adagrad(p, g, state, i, hyper)
    state[0, i] += g
    return p


@njit(cache=True)
def apply_gradient(rule, param, grad, state, hyper):
    """Apply ``rule`` to every element of ``param`` from a gradient buffer (shared params)."""
    p = param.reshape(-1)
    g = grad.reshape(-1)
    for i in range(p.size):
        p[i] = updated(rule, p[i], g[i], state, i, hyper)
