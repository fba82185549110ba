"""Probabilities from a trained network, and networks as bytes (pickling)."""
import os
import tempfile

import numpy as np

from .losses import get_loss


def softmax(logits):
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def predict_proba(net, X, loss=None):
    """``net``'s class probabilities for ``X``.

    cross_entropy takes logits, so the probabilities are their softmax; bce takes
    probabilities (the network ends in a sigmoid), so they are the output itself.
    ``loss`` defaults to the loss the last :meth:`Network.learn` call used.
    """
    if loss is None:
        loss = getattr(net, "trained_loss", None)
        if loss is None:
            raise ValueError("predict_proba needs to know the network's loss: train it with learn() first, "
                             "or pass loss='cross_entropy' or loss='bce'")
    loss = get_loss(loss)
    output = net.predict(X)
    if loss.name == "cross_entropy":
        return softmax(output.reshape(len(output), -1))
    if loss.name == "bce":
        return output
    raise ValueError(f"predict_proba is for classification networks (cross_entropy or bce), "
                     f"not loss={loss.name!r}: use predict")


def network_to_bytes(net, optimizer=None):
    """The model file of ``net`` (and ``optimizer``'s state) as bytes."""
    with tempfile.TemporaryDirectory(prefix="jitbp-pickle-") as tmp:
        path = os.path.join(tmp, "model.jitbp")
        net.save(path, optimizer)
        with open(path, "rb") as handle:
            return handle.read()


def network_from_bytes(data, trained_loss=None):
    """The network whose model file is ``data``; a saved optimizer is ``net.saved_optimizer``."""
    from .serialization import load

    with tempfile.TemporaryDirectory(prefix="jitbp-pickle-") as tmp:
        path = os.path.join(tmp, "model.jitbp")
        with open(path, "wb") as handle:
            handle.write(data)
        net = load(path)
    if trained_loss is not None:
        net.trained_loss = trained_loss
    return net
