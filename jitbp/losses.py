"""Loss functions: each kernel returns the loss and writes dL/d(output) into ``delta``."""
from dataclasses import dataclass

import numpy as np
from numba import njit

from .errors import UnknownNameError

#: What a loss kernel returns when the network's output is outside the loss's domain
#: (-inf: a real loss is never below zero). Callers turn it into a ValueError.
OUT_OF_DOMAIN = -np.inf
#: torch.nn.BCELoss clamps log terms at -100 and its gradient denominator at 1e-12.
BCE_LOG_FLOOR = -100.0
BCE_EPS = 1e-12


@njit(cache=True, inline="always", error_model="numpy")
def _squared_errors(yhat, target, delta, grad_scale):
    """Sum of (yhat - target)^2; writes grad_scale * (yhat - target) into ``delta``."""
    total = 0.0
    for s in range(yhat.shape[0]):
        for j in range(yhat.shape[1]):
            e = yhat[s, j] - target[s, j]
            total += e * e
            delta[s, j] = grad_scale * e
    return total


@njit(cache=True, error_model="numpy")
def sse(yhat, target, delta):
    return _squared_errors(yhat, target, delta, 2.0)


@njit(cache=True, error_model="numpy")
def half_sse(yhat, target, delta):
    return 0.5 * _squared_errors(yhat, target, delta, 1.0)


@njit(cache=True, error_model="numpy")
def mse(yhat, target, delta):
    scale = 1.0 / yhat.size
    return _squared_errors(yhat, target, delta, 2.0 * scale) * scale


@njit(cache=True, error_model="numpy")
def mae(yhat, target, delta):
    scale = 1.0 / yhat.size
    total = 0.0
    for s in range(yhat.shape[0]):
        for j in range(yhat.shape[1]):
            e = yhat[s, j] - target[s, j]
            total += abs(e)
            delta[s, j] = np.sign(e) * scale
    return total * scale


@njit(cache=True, error_model="numpy")
def cross_entropy(logits, labels, delta):
    n, classes = logits.shape
    total = 0.0
    for s in range(n):
        top = logits[s, 0]
        for j in range(1, classes):
            top = max(top, logits[s, j])
        norm = 0.0
        for j in range(classes):
            norm += np.exp(logits[s, j] - top)
        log_norm = top + np.log(norm)
        total += log_norm - logits[s, labels[s]]
        for j in range(classes):
            delta[s, j] = np.exp(logits[s, j] - log_norm) / n
        delta[s, labels[s]] -= 1.0 / n
    return total / n


@njit(cache=True, error_model="numpy")
def bce(prob, target, delta):
    scale = 1.0 / prob.size
    total = 0.0
    for s in range(prob.shape[0]):
        for j in range(prob.shape[1]):
            p = prob[s, j]
            if p < 0.0 or p > 1.0:
                return OUT_OF_DOMAIN
            t = target[s, j]
            log_p = max(np.log(p), BCE_LOG_FLOOR)
            log_q = max(np.log(1.0 - p), BCE_LOG_FLOOR)
            total -= t * log_p + (1.0 - t) * log_q
            delta[s, j] = (p - t) / max((1.0 - p) * p, BCE_EPS) * scale
    return total * scale


@dataclass(frozen=True)
class Loss:
    """A registered loss: its kernel and what its targets are."""

    name: str
    kernel: object
    description: str
    labels: bool = False
    mean: bool = False
    #: Why an output can be outside this loss's domain, for the error message.
    domain: str = ""

    def check(self, value):
        """``value``, or a ValueError if the kernel reported outputs outside the domain."""
        if value == OUT_OF_DOMAIN:
            raise ValueError(f"{self.name}: {self.domain}")
        return value


LOSSES = {loss.name: loss for loss in (
    Loss("sse", sse, "sum of squared errors, sum((y^ - y)^2)"),
    Loss("half_sse", half_sse, "half the sum of squared errors, 0.5 sum((y^ - y)^2)"),
    Loss("mse", mse, "mean squared error over all elements", mean=True),
    Loss("mae", mae, "mean absolute error over all elements", mean=True),
    Loss("cross_entropy", cross_entropy, "softmax + negative log-likelihood on logits, "
         "integer class labels, mean over the batch", labels=True, mean=True),
    Loss("bce", bce, "binary cross-entropy on probabilities, mean over all elements", mean=True,
         domain="the network's outputs must be probabilities in [0, 1]: end it with a sigmoid layer"),
)}


def get_loss(name):
    """The :class:`Loss` registered as ``name``."""
    if isinstance(name, Loss):
        return name
    if not isinstance(name, str):
        raise TypeError(f"loss must be a name (str), got {type(name).__name__}")
    try:
        return LOSSES[name]
    except KeyError:
        raise UnknownNameError(f"unknown loss {name!r}; known losses: {', '.join(LOSSES)}") from None
