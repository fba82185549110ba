"""The CUDA launcher of the Huber test plugin (tests/huber_loss.py)."""
from jitbp.cuda.api import cuda
from jitbp.cuda.launch import grid

from huber_loss import DELTA


@cuda.jit
def _huber(output, target, delta, partials, scale):
    s = cuda.grid(1)
    if s >= output.shape[0]:
        return
    total = 0.0
    for j in range(output.shape[1]):
        e = output[s, j] - target[s, j]
        if abs(e) <= DELTA:
            total += 0.5 * e * e
            delta[s, j] = e * scale
        else:
            total += DELTA * (abs(e) - 0.5 * DELTA)
            delta[s, j] = (DELTA if e > 0 else -DELTA) * scale
    partials[s] = total


def huber(output, target, delta, partials):
    """Per-sample partial sums into ``partials``; the loss is their sum / output.size."""
    scale = 1.0 / output.size
    _huber[grid(output.shape[0])](output, target.reshape(output.shape[0], -1), delta, partials, scale)
    return scale
