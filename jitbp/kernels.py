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

NO_HYPER = np.zeros(0)


# Each rule is a scalar function of (param, grad, its state slots, constants) returning
# the new values; `updated` feeds it one element, `update_row` a whole row with the
# constants hoisted into registers so the loop vectorizes.


@njit(cache=True, inline="always", error_model="numpy")
def _sgd(p, g, buf, lr, momentum, undamped, nesterov, wd, first):
    if wd != 0.0:
        g = g + wd * p
    if momentum != 0.0:
        buf = g if first else momentum * buf + undamped * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


@njit(cache=True, inline="always", error_model="numpy")
def _adam(p, g, m, v, step_size, one_minus_b1, b2, one_minus_b2, eps, wd, bc2_sqrt):
    if wd != 0.0:
        g = g + wd * p
    m = m + one_minus_b1 * (g - m)
    v = b2 * v + one_minus_b2 * g * g
    return p - step_size * (m / (np.sqrt(v) / bc2_sqrt + eps)), m, v


@njit(cache=True, inline="always", error_model="numpy")
def _rmsprop(p, g, v, lr, alpha, one_minus_alpha, eps, wd):
    if wd != 0.0:
        g = g + wd * p
    v = alpha * v + one_minus_alpha * g * g
    return p - lr * (g / (np.sqrt(v) + eps)), v


@njit(cache=True, inline="always", error_model="numpy")
def _adagrad(p, g, s, clr, eps, wd):
    if wd != 0.0:
        g = g + wd * p
    s = s + g * g
    return p - clr * (g / (np.sqrt(s) + eps)), s


@njit(cache=True, inline="always", error_model="numpy")
def _sgd_constants(hyper, t):
    return (t(hyper[SGD_LR]), t(hyper[SGD_MOMENTUM]), t(1.0 - hyper[SGD_DAMPENING]),
            hyper[SGD_NESTEROV] != 0.0, t(hyper[SGD_WD]), hyper[SGD_FIRST] != 0.0)


@njit(cache=True, inline="always", error_model="numpy")
def _adam_constants(hyper, t):
    return (t(hyper[ADAM_LR] / hyper[ADAM_BC1]), t(1.0 - hyper[ADAM_B1]), t(hyper[ADAM_B2]),
            t(1.0 - hyper[ADAM_B2]), t(hyper[ADAM_EPS]), t(hyper[ADAM_WD]), t(hyper[ADAM_BC2_SQRT]))


@njit(cache=True, inline="always", error_model="numpy")
def _rmsprop_constants(hyper, t):
    return (t(hyper[RMS_LR]), t(hyper[RMS_ALPHA]), t(1.0 - hyper[RMS_ALPHA]), t(hyper[RMS_EPS]),
            t(hyper[RMS_WD]))


@njit(cache=True, inline="always", error_model="numpy")
def _adagrad_constants(hyper, t):
    return t(hyper[ADAGRAD_CLR]), t(hyper[ADAGRAD_EPS]), t(hyper[ADAGRAD_WD])


@njit(cache=True, error_model="numpy")
def updated(rule, p, g, state, i, hyper):
    """The new value of parameter element ``p`` (flat index ``i``) given its gradient ``g``.

    ``state`` is the optimizer's (slots, param.size) array for this parameter.
    """
    t = state.dtype.type
    if rule == SGD:
        buf = state[0, i] if state.shape[0] else t(0.0)
        lr, momentum, undamped, nesterov, wd, first = _sgd_constants(hyper, t)
        p, buf = _sgd(p, g, buf, lr, momentum, undamped, nesterov, wd, first)
        if state.shape[0]:
            state[0, i] = buf
        return p
    if rule == ADAM:
        step_size, one_minus_b1, b2, one_minus_b2, eps, wd, bc2_sqrt = _adam_constants(hyper, t)
        p, state[0, i], state[1, i] = _adam(p, g, state[0, i], state[1, i], step_size, one_minus_b1, b2,
                                            one_minus_b2, eps, wd, bc2_sqrt)
        return p
    if rule == RMSPROP:
        lr, alpha, one_minus_alpha, eps, wd = _rmsprop_constants(hyper, t)
        p, state[0, i] = _rmsprop(p, g, state[0, i], lr, alpha, one_minus_alpha, eps, wd)
        return p
    if rule == ADAGRAD:
        clr, eps, wd = _adagrad_constants(hyper, t)
        p, state[0, i] = _adagrad(p, g, state[0, i], clr, eps, wd)
        return p
    state[0, i] += g
    return p


@njit(cache=True, inline="always", error_model="numpy")
def plain_sgd_lr(rule, hyper):
    """The learning rate when ``rule`` is SGD without momentum or weight decay, else -1:
    then the update is just ``p - lr * g`` and kernels may apply it in bulk."""
    if rule == SGD and hyper[SGD_MOMENTUM] == 0.0 and hyper[SGD_WD] == 0.0:
        return hyper[SGD_LR]
    return -1.0


@njit(cache=True, error_model="numpy")
def update_row(rule, p, g, state, offset, hyper):
    """Apply ``rule`` to the 1-D slice ``p`` (flat indices ``offset...``) with gradients ``g``.

    The rule is chosen once per row and its constants are cast to the parameters' dtype,
    so each loop is tight arithmetic the compiler vectorizes. An ordinary call, not
    inlined: a row is long enough that the call costs nothing, and dense's three call
    sites each expanding every rule cost seconds of first compilation.
    """
    m = p.size
    t = p.dtype.type
    plain_lr = t(plain_sgd_lr(rule, hyper))
    if plain_lr >= 0.0:
        for k in range(m):
            p[k] = p[k] - plain_lr * g[k]
    elif rule == SGD:
        lr, momentum, undamped, nesterov, wd, first = _sgd_constants(hyper, t)
        if momentum == 0.0:
            for k in range(m):
                p[k] = _sgd(p[k], g[k], t(0.0), lr, momentum, undamped, nesterov, wd, first)[0]
        else:
            buf = state[0, offset:offset + m]
            for k in range(m):
                p[k], buf[k] = _sgd(p[k], g[k], buf[k], lr, momentum, undamped, nesterov, wd, first)
    elif rule == ADAM:
        step_size, one_minus_b1, b2, one_minus_b2, eps, wd, bc2_sqrt = _adam_constants(hyper, t)
        mean, var = state[0, offset:offset + m], state[1, offset:offset + m]
        for k in range(m):
            p[k], mean[k], var[k] = _adam(p[k], g[k], mean[k], var[k], step_size, one_minus_b1, b2,
                                          one_minus_b2, eps, wd, bc2_sqrt)
    elif rule == RMSPROP:
        lr, alpha, one_minus_alpha, eps, wd = _rmsprop_constants(hyper, t)
        var = state[0, offset:offset + m]
        for k in range(m):
            p[k], var[k] = _rmsprop(p[k], g[k], var[k], lr, alpha, one_minus_alpha, eps, wd)
    elif rule == ADAGRAD:
        clr, eps, wd = _adagrad_constants(hyper, t)
        total = state[0, offset:offset + m]
        for k in range(m):
            p[k], total[k] = _adagrad(p[k], g[k], total[k], clr, eps, wd)
    else:
        acc = state[0, offset:offset + m]
        for k in range(m):
            acc[k] += g[k]


@njit(cache=True, error_model="numpy")
def with_lr(rule, base, lr, out):
    """Write ``base`` into ``out`` with its learning rate set to ``lr`` (a per-step schedule's),
    as ``base_hyper()`` gives it when ``optimizer.lr == lr``."""
    out[:] = base
    if rule == ADAGRAD:
        out[ADAGRAD_LR] = lr
    elif rule != ACCUMULATE:
        out[SGD_LR] = lr  # slot 0 in SGD, Adam and RMSprop alike


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def apply_gradient(rule, param, grad, state, hyper):
    """Apply ``rule`` to every element of ``param`` from a gradient buffer (shared params)."""
    update_row(rule, param.reshape(-1), grad.reshape(-1), state, 0, hyper)
