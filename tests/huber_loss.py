"""A third-party-style loss plugin: Huber (torch.nn.HuberLoss, delta 1, mean over all
elements), with a CPU kernel and a weighted twin; its CUDA launcher is huber_loss_cuda.py (imported only
for device="cuda")."""
from numba import njit

import jitbp
from jitbp.losses import Loss

DELTA = 1.0


@njit(cache=True, inline="always")
def _huber(yhat, target, grad, weighted):
    n, d = yhat.shape
    total_weight = 0.0
    for s in range(n):
        total_weight += target[s, d] if weighted else 1.0
    scale = 1.0 / (d * total_weight)
    total = 0.0
    for s in range(n):
        w = target[s, d] if weighted else 1.0
        for j in range(d):
            e = yhat[s, j] - target[s, j]
            if abs(e) <= DELTA:
                total += w * 0.5 * e * e
                grad[s, j] = e * scale * w
            else:
                total += w * DELTA * (abs(e) - 0.5 * DELTA)
                grad[s, j] = (DELTA if e > 0 else -DELTA) * scale * w
    return total * scale


@njit(cache=True)
def huber(yhat, target, grad):
    return _huber(yhat, target, grad, False)


@njit(cache=True)
def huber_weighted(yhat, target, grad):
    return _huber(yhat, target, grad, True)


HUBER = Loss("huber", huber, "Huber loss (delta 1), mean over all elements", reduction="mean",
             cuda="huber_loss_cuda.huber", weighted_kernel=huber_weighted)


class HuberPlugin:
    @jitbp.hookspecs.hookimpl
    def register_losses(self, register):
        register(HUBER)
