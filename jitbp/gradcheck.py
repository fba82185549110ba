"""Gradients by central differences, to check the analytic ones."""
import numpy as np

#: Relative errors are taken against max(|analytic|, |numeric|, SCALE_FLOOR), so that
#: gradients that are zero up to rounding do not report huge relative errors.
SCALE_FLOOR = 1e-3


def numerical_gradients(net, X, Y, loss="mse", eps=1e-6):
    """dLoss/dparam by central differences, one parameter element at a time, of the
    training-mode loss :meth:`Network.gradients` differentiates (same random keys and
    step); the layers' state buffers are left as they were."""
    grads = {}
    states = {key: value.copy() for key, value in net.states.items()}
    for key, param in net.params.items():
        grad = np.empty_like(param)
        flat, out = param.reshape(-1), grad.reshape(-1)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            upper = net.loss(X, Y, loss, training=True)
            flat[i] = saved - eps
            lower = net.loss(X, Y, loss, training=True)
            flat[i] = saved
            out[i] = (upper - lower) / (2 * eps)
        grads[key] = grad
    for key, value in net.states.items():
        value[...] = states[key]
    return grads


def gradcheck(net, X, Y, loss="mse", eps=1e-6):
    """Largest relative error between ``net.gradients`` and central differences (float64)."""
    if net.dtype != np.float64:
        raise TypeError("gradcheck needs a float64 network: central differences in float32 are noise")
    states = {key: value.copy() for key, value in net.states.items()}
    analytic = net.gradients(X, Y, loss)
    for key, value in net.states.items():
        value[...] = states[key]
    numeric = numerical_gradients(net, X, Y, loss, eps)
    worst = 0.0
    for key, a in analytic.items():
        n = numeric[key]
        scale = np.maximum(np.maximum(np.abs(a), np.abs(n)), SCALE_FLOOR)
        if a.size:
            worst = max(worst, float(np.max(np.abs(a - n) / scale)))
    return worst
