"""The optimizers' update rules as CUDA device functions.

Compiled by :func:`jitbp.scalar.on_cuda` from the same ``@scalar`` source as the CPU
rules (:mod:`jitbp.rules`): a device kernel computes one element's gradient and stores
``updated(rule, p, g, state, i, hyper)`` in place of a gradient buffer.
"""
from .. import rules as r
from ..scalar import on_cuda
from .api import cuda
from .launch import flat, grid

_sgd_c, _sgd = on_cuda(r.sgd_constants), on_cuda(r.sgd_update)
_adam_c, _adam = on_cuda(r.adam_constants), on_cuda(r.adam_update)
_rms_c, _rms = on_cuda(r.rmsprop_constants), on_cuda(r.rmsprop_update)
_adagrad_c, _adagrad = on_cuda(r.adagrad_constants), on_cuda(r.adagrad_update)
_adamw_c, _adamw = on_cuda(r.adamw_constants), on_cuda(r.adamw_update)


@cuda.jit(device=True)
def _step(rule, p, g, s0, s1, hyper):
    if rule == r.SGD:
        return _sgd(p, g, s0, s1, _sgd_c(hyper))
    if rule == r.ADAM:
        return _adam(p, g, s0, s1, _adam_c(hyper))
    if rule == r.RMSPROP:
        return _rms(p, g, s0, s1, _rms_c(hyper))
    if rule == r.ADAGRAD:
        return _adagrad(p, g, s0, s1, _adagrad_c(hyper))
    if rule == r.ADAMW:
        return _adamw(p, g, s0, s1, _adamw_c(hyper))
    return p, s0 + g, s1


@cuda.jit(device=True)
def updated(rule, p, g, state, i, hyper):
    """The new value of parameter element ``p`` (flat index ``i``) given its gradient ``g``."""
    slots = state.shape[0]
    s0 = state[0, i] if slots > 0 else 0.0
    s1 = state[1, i] if slots > 1 else 0.0
    p, s0, s1 = _step(rule, p, g, s0, s1, hyper)
    if slots > 0:
        state[0, i] = s0
    if slots > 1:
        state[1, i] = s1
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
