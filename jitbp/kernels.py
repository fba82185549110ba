"""Numba helpers shared by every layer kernel: the fused optimizer update rules.

A derivative kernel computes the gradient ``g`` of one parameter element and hands
it to :func:`updated`, which applies the optimizer's rule in place of a gradient
buffer. The rule is chosen by an integer id rather than by passing a jitted
function: Numba cannot cache kernels that take a dispatcher argument (the cache key
holds the dispatcher's identity, so every process recompiles), while an int keeps
one cached compilation per layer and dtype. See docs/architecture.md.

The rules' math and layouts are the records of :mod:`jitbp.rules`; the branches below
only route each built-in id to its record's functions (tests check every record has
one). A plugin's rule has no branch: the engine accumulates its gradients and calls
:func:`apply_rule`.
"""
import numpy as np
from numba import njit

from . import rules as r
from .rules import ACCUMULATE, ADAGRAD, ADAM, ADAMW, RMSPROP, SGD  # noqa: F401 (re-exported ids)

NO_HYPER = np.zeros(0)


@njit(cache=True, inline="always", error_model="numpy")
def _cast(c, t):
    """A rule's constants in the parameters' dtype, so its loops stay in that precision."""
    return (t(c[0]), t(c[1]), t(c[2]), t(c[3]), t(c[4]), t(c[5]), t(c[6]))


@njit(cache=True, inline="always", error_model="numpy")
def _constants(rule, hyper, t):
    if rule == SGD:
        return _cast(r.sgd_constants(hyper), t)
    if rule == ADAM:
        return _cast(r.adam_constants(hyper), t)
    if rule == RMSPROP:
        return _cast(r.rmsprop_constants(hyper), t)
    if rule == ADAGRAD:
        return _cast(r.adagrad_constants(hyper), t)
    if rule == ADAMW:
        return _cast(r.adamw_constants(hyper), t)
    return _cast((0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), t)


@njit(cache=True, inline="always", error_model="numpy")
def _step(rule, p, g, s0, s1, c):
    """One element through the rule ``rule`` (constants ``c``): ``(p, s0, s1)``."""
    if rule == SGD:
        return r.sgd_update(p, g, s0, s1, c)
    if rule == ADAM:
        return r.adam_update(p, g, s0, s1, c)
    if rule == RMSPROP:
        return r.rmsprop_update(p, g, s0, s1, c)
    if rule == ADAGRAD:
        return r.adagrad_update(p, g, s0, s1, c)
    if rule == ADAMW:
        return r.adamw_update(p, g, s0, s1, c)
    return p, s0 + g, s1


@njit(cache=True, error_model="numpy")
def updated(rule, p, g, state, i, hyper):
    """The new value of parameter element ``p`` (flat index ``i``) given its gradient ``g``.

    ``state`` is the optimizer's (slots, param.size) array for this parameter.
    """
    t = state.dtype.type
    slots = state.shape[0]
    s0 = state[0, i] if slots > 0 else t(0.0)
    s1 = state[1, i] if slots > 1 else t(0.0)
    p, s0, s1 = _step(rule, p, g, s0, s1, _constants(rule, hyper, t))
    if slots > 0:
        state[0, i] = s0
    if slots > 1:
        state[1, i] = s1
    return p


@njit(cache=True, inline="always", error_model="numpy")
def plain_sgd_lr(rule, hyper):
    """The learning rate when ``rule`` is SGD without momentum or weight decay, else -1:
    then the update is just ``p - lr * g`` and kernels may apply it in bulk."""
    if rule == SGD and hyper[r.SGD_MOMENTUM] == 0.0 and hyper[r.SGD_WD] == 0.0:
        return hyper[r.SGD_LR]
    return -1.0


@njit(cache=True, inline="always", error_model="numpy")
def _rows(rule, p, g, state, offset, c):
    """The loop of :func:`update_row` for one rule, specialised on its slot count."""
    m = p.size
    t = p.dtype.type
    slots = state.shape[0]
    if slots == 0:
        for k in range(m):
            p[k] = _step(rule, p[k], g[k], t(0.0), t(0.0), c)[0]
    elif slots == 1:
        s0 = state[0, offset:offset + m]
        for k in range(m):
            p[k], s0[k], _ = _step(rule, p[k], g[k], s0[k], t(0.0), c)
    else:
        s0, s1 = state[0, offset:offset + m], state[1, offset:offset + m]
        for k in range(m):
            p[k], s0[k], s1[k] = _step(rule, p[k], g[k], s0[k], s1[k], c)


@njit(cache=True, error_model="numpy")
def update_row(rule, p, g, state, offset, hyper):
    """Apply ``rule`` to the 1-D slice ``p`` (flat indices ``offset...``) with gradients ``g``.

    The rule is chosen once per row and its constants are cast to the parameters' dtype,
    so each loop is tight arithmetic the compiler vectorizes. An ordinary call, not
    inlined: a row is long enough that the call costs nothing, and dense's three call
    sites each expanding every rule cost seconds of first compilation.
    """
    t = p.dtype.type
    plain_lr = t(plain_sgd_lr(rule, hyper))
    if plain_lr >= 0.0:
        for k in range(p.size):
            p[k] = p[k] - plain_lr * g[k]
        return
    c = _constants(rule, hyper, t)
    if rule == SGD:
        _rows(SGD, p, g, state, offset, c)
    elif rule == ADAM:
        _rows(ADAM, p, g, state, offset, c)
    elif rule == RMSPROP:
        _rows(RMSPROP, p, g, state, offset, c)
    elif rule == ADAGRAD:
        _rows(ADAGRAD, p, g, state, offset, c)
    elif rule == ADAMW:
        _rows(ADAMW, p, g, state, offset, c)
    else:
        acc = state[0, offset:offset + p.size]
        for k in range(p.size):
            acc[k] += g[k]


@njit(cache=True, error_model="numpy")
def with_lr(rule, base, lr, out):
    """Write ``base`` into ``out`` with its learning rate set to ``lr`` (a per-step schedule's),
    as ``base_hyper()`` gives it when ``optimizer.lr == lr``."""
    out[:] = base
    if rule != ACCUMULATE:
        out[r.LR_SLOT] = lr


@njit(cache=True, error_model="numpy")
def hyper_at(rule, base, step, out):
    """Write into ``out`` the hyper-parameters of ``rule`` at ``step`` (1-based) from ``base``."""
    out[:] = base
    if rule == SGD:
        r.sgd_at_step(base, step, out)
    elif rule == ADAM or rule == ADAMW:
        r.adam_at_step(base, step, out)
    elif rule == ADAGRAD:
        r.adagrad_at_step(base, step, out)


@njit(cache=True, error_model="numpy")
def apply_gradient(rule, param, grad, state, hyper):
    """Apply ``rule`` to every element of ``param`` from a gradient buffer (shared params)."""
    update_row(rule, param.reshape(-1), grad.reshape(-1), state, 0, hyper)


@njit(cache=True, error_model="numpy")
def apply_rule(update, constants, param, grad, state, hyper):
    """Apply a plugin's rule (its ``update`` and ``constants`` functions) to ``param`` from
    its gradient buffer. It takes functions, so it compiles once per process and rule."""
    p, g = param.reshape(-1), grad.reshape(-1)
    t = p.dtype.type
    c = _cast(constants(hyper), t)
    slots = state.shape[0]
    for i in range(p.size):
        s0 = state[0, i] if slots > 0 else t(0.0)
        s1 = state[1, i] if slots > 1 else t(0.0)
        p[i], s0, s1 = update(p[i], g[i], s0, s1, c)
        if slots > 0:
            state[0, i] = s0
        if slots > 1:
            state[1, i] = s1
