"""A plugin's loss (tests/huber_loss.py) trains on device="cuda" as on the CPU, through its
record's CUDA launcher; weighted losses are refused on the device before training."""
import numpy as np
import pytest

import jitbp
from cuda_helpers import needs_cuda, train_both
from jitbp import plugins

pytestmark = needs_cuda


def build(device):
    return jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=1), jitbp.layer("tanh"),
                            jitbp.layer("dense", 4, 2, seed=2), device=device)


@pytest.fixture
def huber():
    from huber_loss import HuberPlugin

    registry = plugins.registry()
    registry.register_plugin(HuberPlugin(), name="huber-plugin")
    try:
        yield
    finally:
        registry.unregister_plugin("huber-plugin")


def test_plugin_loss_on_device(huber):
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(5, 3)), 3 * rng.normal(size=(5, 2))
    train_both(build, X, Y, loss="huber")


def test_weights_are_refused_on_device():
    rng = np.random.default_rng(7)
    net = build("cuda")
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match="device='cpu' only"):
        net.learn(rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), sample_weight=np.ones(5))
    assert all(np.array_equal(before[k], net.params[k]) for k in before)
