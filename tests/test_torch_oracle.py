"""Gradients and training trajectories against PyTorch autograd and torch.optim (float64)."""
import numpy as np
import pytest

import jitbp
from graphs import chain, data, graph
from torch_mirror import torch_gradients, torch_train

RTOL = 1e-8
LOSSES = ["sse", "half_sse", "mse", "mae", "cross_entropy", "bce"]
OPTIMIZERS = {
    "sgd": lambda: jitbp.SGD(lr=0.05),
    "sgd_momentum": lambda: jitbp.SGD(lr=0.05, momentum=0.9),
    "sgd_nesterov": lambda: jitbp.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "sgd_dampening_wd": lambda: jitbp.SGD(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.01),
    "adam": lambda: jitbp.Adam(lr=0.01),
    "adam_wd": lambda: jitbp.Adam(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1),
    "rmsprop": lambda: jitbp.RMSprop(lr=0.01),
    "adagrad": lambda: jitbp.Adagrad(lr=0.05, lr_decay=0.01),
}


def assert_close(actual, expected):
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], rtol=RTOL, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("build", [chain, graph])
@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_match_torch(build, loss, rng):
    net = build(rng, loss)
    X, Y = data(rng, loss)
    assert_close(net.gradients(X, Y, loss), torch_gradients(net, X, Y, loss))


@pytest.mark.parametrize("batch_size", [None, 4, 1])
@pytest.mark.parametrize("loss", LOSSES)
def test_three_epochs_match_torch_sgd(loss, batch_size, rng):
    net = graph(rng, loss)
    X, Y = data(rng, loss)
    expected_history, expected = torch_train(net, X, Y, loss, jitbp.SGD(lr=0.05), 3, batch_size)
    history = net.learn(X, Y, loss, jitbp.SGD(lr=0.05), epochs=3, batch_size=batch_size, shuffle=False)
    np.testing.assert_allclose(history, expected_history, rtol=RTOL)
    assert_close(net.params, expected)


@pytest.mark.parametrize("build", [chain, graph])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_three_epochs_match_torch_optimizers(build, name, rng):
    loss = "mse"
    net = build(rng, loss)
    X, Y = data(rng, loss)
    expected_history, expected = torch_train(net, X, Y, loss, OPTIMIZERS[name](), 3, 4)
    history = net.learn(X, Y, loss, OPTIMIZERS[name](), epochs=3, batch_size=4, shuffle=False)
    np.testing.assert_allclose(history, expected_history, rtol=RTOL)
    assert_close(net.params, expected)


def test_optimizer_state_carries_across_learn_calls(rng):
    net = chain(rng, "mse")
    X, Y = data(rng, "mse")
    _, expected = torch_train(net, X, Y, "mse", jitbp.Adam(lr=0.01), 4, 4)
    optimizer = jitbp.Adam(lr=0.01)
    for _ in range(4):
        net.learn(X, Y, "mse", optimizer, epochs=1, batch_size=4, shuffle=False)
    assert_close(net.params, expected)
