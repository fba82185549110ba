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
ADAGRAD_CLR, ADAGRAD_EPS, ADAGRAD_WD, ADAGRAD_LR, ADAGRAD_LR_DECAY = range(5)

NO_STATE = np.zeros((0, 0))
NO_HYPER = np.zeros(0)


# Each rule is a scalar function of (param, grad, its state slots, constants) returning
# the new values; `updated` feeds it one element, `update_row` a whole row with the
# constants hoisted into registers so the loop vectorizes.


@njit(cache=True, inline="always")
def _sgd(p, g, buf, lr, momentum, dampening, nesterov, wd, first):
    if wd != 0.0:
        g = g + wd * p
    if momentum != 0.0:
        buf = g if first else momentum * buf + (1.0 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


@njit(cache=True, inline="always")
def _adam(p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2_sqrt):
    if wd != 0.0:
        g = g + wd * p
    m = m + (1.0 - b1) * (g - m)
    v = b2 * v + (1.0 - b2) * g * g
    return p - (lr / bc1) * (m / (np.sqrt(v) / bc2_sqrt + eps)), m, v


@njit(cache=True, inline="always")
def _rmsprop(p, g, v, lr, alpha, eps, wd):
    if wd != 0.0:
        g = g + wd * p
    v = alpha * v + (1.0 - alpha) * g * g
    return p - lr * (g / (np.sqrt(v) + eps)), v


@njit(cache=True, inline="always")
def _adagrad(p, g, s, clr, eps, wd):
    if wd != 0.0:
        g = g + wd * p
    s = s + g * g
    return p - clr * (g / (np.sqrt(s) + eps)), s


@njit(cache=True, inline="always")
def updated(rule, p, g, state, i, hyper):
    """The new value of parameter element ``p`` (flat index ``i``) given its gradient ``g``.

    ``state`` is the optimizer's (slots, param.size) array for this parameter.
    """
    if rule == SGD:
        buf = state[0, i] if state.shape[0] else 0.0
        p, buf = _sgd(p, g, buf, hyper[SGD_LR], hyper[SGD_MOMENTUM], hyper[SGD_DAMPENING],
                      hyper[SGD_NESTEROV] != 0.0, hyper[SGD_WD], hyper[SGD_FIRST] != 0.0)
        if state.shape[0]:
            state[0, i] = buf
        return p
    if rule == ADAM:
        p, state[0, i], state[1, i] = _adam(p, g, state[0, i], state[1, i], hyper[ADAM_LR], hyper[ADAM_B1],
                                            hyper[ADAM_B2], hyper[ADAM_EPS], hyper[ADAM_WD],
                                            hyper[ADAM_BC1], hyper[ADAM_BC2_SQRT])
        return p
    if rule == RMSPROP:
        p, state[0, i] = _rmsprop(p, g, state[0, i], hyper[RMS_LR], hyper[RMS_ALPHA], hyper[RMS_EPS],
                                  hyper[RMS_WD])
        return p
    if rule == ADAGRAD:
        p, state[0, i] = _adagrad(p, g, state[0, i], hyper[ADAGRAD_CLR], hyper[ADAGRAD_EPS], hyper[ADAGRAD_WD])
        return p
    state[0, i] += g
    return p


@njit(cache=True, inline="always")
def update_row(rule, p, g, state, offset, hyper):
    """Apply ``rule`` to the 1-D slice ``p`` (flat indices ``offset...``) with gradients ``g``."""
    m = p.size
    if rule == SGD:
        lr, momentum, wd = hyper[SGD_LR], hyper[SGD_MOMENTUM], hyper[SGD_WD]
        if momentum == 0.0 and wd == 0.0:
            for k in range(m):
                p[k] = p[k] - lr * g[k]
            return
        dampening, nesterov, first = hyper[SGD_DAMPENING], hyper[SGD_NESTEROV] != 0.0, hyper[SGD_FIRST] != 0.0
        if momentum == 0.0:
            for k in range(m):
                p[k] = _sgd(p[k], g[k], 0.0, lr, momentum, dampening, nesterov, wd, first)[0]
            return
        buf = state[0, offset:offset + m]
        for k in range(m):
            p[k], buf[k] = _sgd(p[k], g[k], buf[k], lr, momentum, dampening, nesterov, wd, first)
    elif rule == ADAM:
        lr, b1, b2, eps = hyper[ADAM_LR], hyper[ADAM_B1], hyper[ADAM_B2], hyper[ADAM_EPS]
        wd, bc1, bc2_sqrt = hyper[ADAM_WD], hyper[ADAM_BC1], hyper[ADAM_BC2_SQRT]
        mean, var = state[0, offset:offset + m], state[1, offset:offset + m]
        for k in range(m):
            p[k], mean[k], var[k] = _adam(p[k], g[k], mean[k], var[k], lr, b1, b2, eps, wd, bc1, bc2_sqrt)
    elif rule == RMSPROP:
        lr, alpha, eps, wd = hyper[RMS_LR], hyper[RMS_ALPHA], hyper[RMS_EPS], hyper[RMS_WD]
        var = state[0, offset:offset + m]
        for k in range(m):
            p[k], var[k] = _rmsprop(p[k], g[k], var[k], lr, alpha, eps, wd)
    elif rule == ADAGRAD:
        clr, eps, wd = hyper[ADAGRAD_CLR], hyper[ADAGRAD_EPS], hyper[ADAGRAD_WD]
        total = state[0, offset:offset + m]
        for k in range(m):
            p[k], total[k] = _adagrad(p[k], g[k], total[k], clr, eps, wd)
    else:
        acc = state[0, offset:offset + m]
        for k in range(m):
            acc[k] += g[k]


@njit(cache=True)
def hyper_at(rule, base, step, out):
    """Write into ``out`` the hyper-parameters of ``rule`` at ``step`` (1-based) from ``base``."""
    out[:] = base
    if rule == SGD:
        out[SGD_FIRST] = 1.0 if step == 1 else 0.0
    elif rule == ADAM:
        out[ADAM_BC1] = 1.0 - base[ADAM_B1] ** step
        out[ADAM_BC2_SQRT] = np.sqrt(1.0 - base[ADAM_B2] ** step)
    elif rule == ADAGRAD:
        out[ADAGRAD_CLR] = base[ADAGRAD_LR] / (1.0 + (step - 1) * base[ADAGRAD_LR_DECAY])


@njit(cache=True)
def apply_gradient(rule, param, grad, state, hyper):
    """Apply ``rule`` to every element of ``param`` from a gradient buffer (shared params)."""
    update_row(rule, param.reshape(-1), grad.reshape(-1), state, 0, hyper)
