"""Loss functions, one :class:`Loss` record each: its CPU kernel, its CUDA launcher, its
target domain and its reduction. Plugins add records with the ``register_losses`` hook.

A kernel ``kernel(output, target, delta)`` returns the loss of the batch and writes
dL/d(output) into ``delta``. Its weighted twin reads one weight per sample from the
target's last column (see :mod:`jitbp.weights`): mean losses become
``sum_i w_i l_i / sum_i w_i`` over the batch (``l_i`` the sample's mean over its
elements), sum losses ``sum_i w_i l_i``.
"""
import importlib
import math
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from .errors import PluginError, UnknownNameError
from .scalar import scalar

#: What a loss kernel returns when the network's output is outside the loss's domain
#: (-inf: a real loss is never below zero). Callers turn it into a ValueError.
OUT_OF_DOMAIN = -np.inf
#: torch.nn.BCELoss clamps log terms at -100 and its gradient denominator at 1e-12.
BCE_LOG_FLOOR = -100.0
BCE_EPS = 1e-12
REDUCTIONS = ("mean", "sum")


@njit(cache=True, inline="always", error_model="numpy")
def _weight(target, s, d, weighted):
    """Sample ``s``'s weight: the target's column ``d`` when weighted, else 1."""
    return target[s, d] if weighted else 1.0


@njit(cache=True, inline="always", error_model="numpy")
def _total_weight(target, n, d, weighted):
    """The batch's sum of weights (``n`` unweighted)."""
    if not weighted:
        return float(n)
    total = 0.0
    for s in range(n):
        total += target[s, d]
    return total


@njit(cache=True, inline="always", error_model="numpy")
def _inverse(x):
    """1 / x, or 0 for a batch whose weights are all zero (it then moves nothing)."""
    return 1.0 / x if x != 0.0 else 0.0


@njit(cache=True, inline="always", error_model="numpy")
def _squared_errors(yhat, target, delta, grad_scale, weighted):
    """Sum of w (yhat - target)^2; writes grad_scale * w * (yhat - target) into ``delta``."""
    total = 0.0
    d = yhat.shape[1]
    for s in range(yhat.shape[0]):
        w = _weight(target, s, d, weighted)
        for j in range(d):
            e = yhat[s, j] - target[s, j]
            total += w * (e * e)
            delta[s, j] = grad_scale * e * w
    return total


@njit(cache=True, inline="always", error_model="numpy")
def _mse(yhat, target, delta, weighted):
    scale = _inverse(yhat.shape[1] * _total_weight(target, yhat.shape[0], yhat.shape[1], weighted))
    return _squared_errors(yhat, target, delta, 2.0 * scale, weighted) * scale


@njit(cache=True, inline="always", error_model="numpy")
def _mae(yhat, target, delta, weighted):
    d = yhat.shape[1]
    scale = _inverse(d * _total_weight(target, yhat.shape[0], d, weighted))
    total = 0.0
    for s in range(yhat.shape[0]):
        w = _weight(target, s, d, weighted)
        for j in range(d):
            e = yhat[s, j] - target[s, j]
            total += w * abs(e)
            delta[s, j] = np.sign(e) * scale * w
    return total * scale


@scalar
def cross_entropy_sample(logits, s, label, w, inv, delta):
    """Sample ``s``'s weighted loss term; writes its share ``inv * w`` of the gradient
    (``@scalar``: the CUDA kernel in :mod:`jitbp.cuda.losses` compiles the same source)."""
    classes = logits.shape[1]
    top = logits[s, 0]
    for j in range(1, classes):
        top = max(top, logits[s, j])
    norm = 0.0
    for j in range(classes):
        norm += math.exp(logits[s, j] - top)
    log_norm = top + math.log(norm)
    for j in range(classes):
        delta[s, j] = math.exp(logits[s, j] - log_norm) * inv * w
    delta[s, label] -= inv * w
    return w * (log_norm - logits[s, label])


@njit(cache=True, inline="always", error_model="numpy")
def _bce(prob, target, delta, weighted):
    d = prob.shape[1]
    scale = _inverse(d * _total_weight(target, prob.shape[0], d, weighted))
    total = 0.0
    for s in range(prob.shape[0]):
        w = _weight(target, s, d, weighted)
        for j in range(d):
            p = prob[s, j]
            if p < 0.0 or p > 1.0:
                return OUT_OF_DOMAIN
            t = target[s, j]
            log_p = max(np.log(p), BCE_LOG_FLOOR)
            log_q = max(np.log(1.0 - p), BCE_LOG_FLOOR)
            total -= w * (t * log_p + (1.0 - t) * log_q)
            delta[s, j] = (p - t) / max((1.0 - p) * p, BCE_EPS) * scale * w
    return total * scale


@njit(cache=True, error_model="numpy")
def sse(yhat, target, delta):
    return _squared_errors(yhat, target, delta, 2.0, False)


@njit(cache=True, error_model="numpy")
def sse_weighted(yhat, target, delta):
    return _squared_errors(yhat, target, delta, 2.0, True)


@njit(cache=True, error_model="numpy")
def half_sse(yhat, target, delta):
    return 0.5 * _squared_errors(yhat, target, delta, 1.0, False)


@njit(cache=True, error_model="numpy")
def half_sse_weighted(yhat, target, delta):
    return 0.5 * _squared_errors(yhat, target, delta, 1.0, True)


@njit(cache=True, error_model="numpy")
def mse(yhat, target, delta):
    return _mse(yhat, target, delta, False)


@njit(cache=True, error_model="numpy")
def mse_weighted(yhat, target, delta):
    return _mse(yhat, target, delta, True)


@njit(cache=True, error_model="numpy")
def mae(yhat, target, delta):
    return _mae(yhat, target, delta, False)


@njit(cache=True, error_model="numpy")
def mae_weighted(yhat, target, delta):
    return _mae(yhat, target, delta, True)


@njit(cache=True, error_model="numpy")
def cross_entropy(logits, labels, delta):
    n = logits.shape[0]
    total = 0.0
    for s in range(n):
        total += cross_entropy_sample(logits, s, labels[s], 1.0, 1.0 / n, delta)
    return total / n


@njit(cache=True, error_model="numpy")
def cross_entropy_weighted(logits, labels, delta):
    """``labels[s, 0]`` is sample s's class (as a float), ``labels[s, 1]`` its weight."""
    n = logits.shape[0]
    inv = _inverse(_total_weight(labels, n, 1, True))
    total = 0.0
    for s in range(n):
        total += cross_entropy_sample(logits, s, int(labels[s, 0]), labels[s, 1], inv, delta)
    return total * inv


@njit(cache=True, error_model="numpy")
def bce(prob, target, delta):
    return _bce(prob, target, delta, False)


@njit(cache=True, error_model="numpy")
def bce_weighted(prob, target, delta):
    return _bce(prob, target, delta, True)


def probabilities(target):
    """Target domain of ``bce``: probabilities in [0, 1]."""
    if target.size and (target.min() < 0 or target.max() > 1):
        raise ValueError("bce targets must be probabilities in [0, 1]")


@dataclass(frozen=True)
class Loss:
    """A registered loss: its kernels, targets and reduction."""

    name: str
    kernel: object
    description: str
    labels: bool = False
    #: ``"mean"`` (the value is an average: epochs average batches by size) or ``"sum"``.
    reduction: str = "sum"
    #: Why an output can be outside this loss's domain, for the error message.
    domain: str = ""
    #: ``"pkg.module.obj"``: ``obj(output, target, delta, partials)`` launches device kernels
    #: that write ``delta`` and per-sample partial sums, and returns the factor on their sum.
    cuda: str = ""
    #: ``check(target)`` raises ValueError for targets outside the loss's domain.
    targets: object = None
    #: The kernel reading per-sample weights from the target's last column, if any.
    weighted_kernel: object = None
    #: True for the weighted twin :meth:`weighted` returns (targets carry the weights).
    packed: bool = False

    @property
    def mean(self):
        return self.reduction == "mean"

    def check(self, value):
        """``value``, or a ValueError if the kernel reported outputs outside the domain."""
        if value == OUT_OF_DOMAIN:
            raise ValueError(f"{self.name}: {self.domain}")
        return value

    def check_targets(self, target):
        """Refuse targets outside the loss's domain (before any kernel runs)."""
        if self.targets is not None:
            self.targets(target)

    def weighted(self):
        """The twin of this loss whose targets carry a weight column (:mod:`jitbp.weights`)."""
        if self.weighted_kernel is None:
            raise ValueError(f"loss {self.name!r} takes no sample_weight or class_weight (its record has "
                             f"no weighted_kernel)")
        return replace(self, kernel=self.weighted_kernel, labels=False, weighted_kernel=None, packed=True)

    def cuda_launcher(self):
        """The CUDA launcher named by ``cuda``, or ValueError when the loss has none."""
        if not self.cuda or self.packed:
            what = "weighted " if self.packed else ""
            raise ValueError(f"loss {self.name!r}: no {what}CUDA kernel; train it with device='cpu'")
        module, _, attr = self.cuda.rpartition(".")
        return getattr(importlib.import_module(module), attr)


def _pointwise(name):
    return f"jitbp.cuda.losses.{name}"


BUILTIN_LOSSES = (
    Loss("sse", sse, "sum of squared errors, sum((y^ - y)^2)", cuda=_pointwise("sse"),
         weighted_kernel=sse_weighted),
    Loss("half_sse", half_sse, "half the sum of squared errors, 0.5 sum((y^ - y)^2)",
         cuda=_pointwise("half_sse"), weighted_kernel=half_sse_weighted),
    Loss("mse", mse, "mean squared error over all elements", reduction="mean", cuda=_pointwise("mse"),
         weighted_kernel=mse_weighted),
    Loss("mae", mae, "mean absolute error over all elements", reduction="mean", cuda=_pointwise("mae"),
         weighted_kernel=mae_weighted),
    Loss("cross_entropy", cross_entropy, "softmax + negative log-likelihood on logits, "
         "integer class labels, mean over the batch", labels=True, reduction="mean",
         cuda=_pointwise("cross_entropy"), weighted_kernel=cross_entropy_weighted),
    Loss("bce", bce, "binary cross-entropy on probabilities, mean over all elements", reduction="mean",
         domain="the network's outputs must be probabilities in [0, 1]: end it with a sigmoid layer",
         cuda=_pointwise("bce"), targets=probabilities, weighted_kernel=bce_weighted),
)
#: Losses by name: the built-ins, then those plugins registered (``register_losses``).
LOSSES = {loss.name: loss for loss in BUILTIN_LOSSES}


def register_loss(loss):
    """Add the :class:`Loss` record ``loss`` (what the ``register_losses`` hook's callback does)."""
    if not isinstance(loss, Loss):
        raise PluginError(f"register() takes a jitbp.losses.Loss record, got {loss!r}")
    if not loss.name.isidentifier():
        raise PluginError(f"loss name must be an identifier, got {loss.name!r}")
    if loss.reduction not in REDUCTIONS:
        raise PluginError(f"loss {loss.name!r}: reduction must be one of {REDUCTIONS}, got {loss.reduction!r}")
    for field in ("kernel", "weighted_kernel"):
        value = getattr(loss, field)
        if value is not None and not hasattr(value, "py_func"):
            raise PluginError(f"loss {loss.name!r}: {field} must be a Numba-jitted function")
    if LOSSES.get(loss.name, loss) is not loss:
        raise PluginError(f"loss {loss.name!r} is already registered")
    LOSSES[loss.name] = loss


def unregister_loss(name):
    """Forget a plugin's loss (built-in losses stay)."""
    if any(loss.name == name for loss in BUILTIN_LOSSES):
        raise ValueError(f"loss {name!r} is built in")
    LOSSES.pop(name, None)


def get_loss(name):
    """The :class:`Loss` registered as ``name`` (plugins' losses included)."""
    if isinstance(name, Loss):
        return name
    if not isinstance(name, str):
        raise TypeError(f"loss must be a name (str), got {type(name).__name__}")
    if name not in LOSSES:
        from .plugins import registry

        registry()  # loads the plugins, whose register_losses hooks fill LOSSES
    try:
        return LOSSES[name]
    except KeyError:
        raise UnknownNameError(f"unknown loss {name!r}; known losses: {', '.join(LOSSES)}") from None
