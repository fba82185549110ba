"""Losses as records: a plugin registers Huber through register_losses and trains with it
(against torch.nn.HuberLoss), weighted too; the built-ins are records with CUDA launchers."""
import numpy as np
import pytest

import jitbp
from jitbp import losses, plugins

from huber_loss import HuberPlugin


@pytest.fixture
def huber_plugin():
    registry = plugins.registry()
    info = registry.register_plugin(HuberPlugin(), name="huber-plugin")
    try:
        yield info
    finally:
        registry.unregister_plugin("huber-plugin")
    assert "huber" not in losses.LOSSES


def net():
    return jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=1), jitbp.layer("tanh"), jitbp.layer("dense", 4, 2, seed=2))


def test_plugin_loss_trains_like_torch_huber(huber_plugin, rng):
    torch = pytest.importorskip("torch")
    assert huber_plugin.losses == ("huber",) and not huber_plugin.error
    X, Y = rng.normal(size=(10, 3)), 3 * rng.normal(size=(10, 2))  # errors on both sides of delta
    w = rng.uniform(0.0, 2.0, size=10)
    for weights in (None, w):
        ours = net()
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
        with torch.no_grad():
            for lin, k in ((model[0], 0), (model[2], 1)):
                lin.weight.copy_(torch.from_numpy(ours.params[f"dense_{k}.W"]))
                lin.bias.copy_(torch.from_numpy(ours.params[f"dense_{k}.b"]))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            per = torch.nn.HuberLoss(reduction="none")(model(torch.from_numpy(X)), torch.from_numpy(Y)).mean(1)
            tw = torch.ones(10, dtype=torch.float64) if weights is None else torch.from_numpy(weights)
            ((tw * per).sum() / tw.sum()).backward()
            opt.step()
        ours.learn(X, Y, "huber", jitbp.SGD(lr=0.1), epochs=3, sample_weight=weights)
        np.testing.assert_allclose(ours.params["dense_0.W"], model[0].weight.detach().numpy(), rtol=1e-10,
                                   atol=1e-13)
        np.testing.assert_allclose(ours.params["dense_1.b"], model[2].bias.detach().numpy(), rtol=1e-10,
                                   atol=1e-13)


def test_unknown_loss_lists_the_plugins_losses(huber_plugin):
    with pytest.raises(jitbp.UnknownNameError, match="huber"):
        losses.get_loss("hubber")


def test_register_loss_refuses_bad_records():
    with pytest.raises(jitbp.PluginError, match="already registered"):
        losses.register_loss(losses.Loss("mse", losses.sse, "clash"))
    with pytest.raises(jitbp.PluginError, match="reduction"):
        losses.register_loss(losses.Loss("odd", losses.sse, "x", reduction="median"))
    with pytest.raises(jitbp.PluginError, match="Numba-jitted"):
        losses.register_loss(losses.Loss("plain", lambda a, b, c: 0.0, "x"))


def test_a_loss_without_weighted_kernel_refuses_weights(rng):
    record = losses.Loss("bare", losses.sse, "sse without a weighted twin")
    with pytest.raises(ValueError, match="no weighted_kernel"):
        net().learn(rng.normal(size=(4, 3)), rng.normal(size=(4, 2)), record, sample_weight=np.ones(4))


def test_builtin_losses_are_records_with_cuda_launchers():
    assert set(losses.LOSSES) >= {"mse", "sse", "half_sse", "mae", "cross_entropy", "bce"}
    for loss in losses.BUILTIN_LOSSES:
        assert loss.reduction in losses.REDUCTIONS and loss.cuda.startswith("jitbp.cuda.losses.")
        assert loss.weighted_kernel is not None
    with pytest.raises(ValueError, match="probabilities"):
        losses.LOSSES["bce"].check_targets(np.array([[1.5]]))
