"""Every built-in layer and loss against central differences (float64)."""
import numpy as np
import pytest

import jitbp

TOL = 1e-6


def single(kind, loss="mse", width=4):
    """dense -> kind -> dense, so the layer sees varied inputs and feeds a loss."""
    x = jitbp.Input(3)
    h = jitbp.layer("dense", 3, width, seed=1)(x)
    return jitbp.Network(x, jitbp.layer("dense", width, 2, seed=2)(jitbp.layer(kind)(h)))


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "relu", "identity", "softmax"])
def test_activation_layers(kind, rng):
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert jitbp.gradcheck(single(kind), X, Y, "mse") < TOL


def test_step_passes_no_gradient(rng):
    net = single("step")
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    grads = net.gradients(X, Y, "mse")
    assert np.all(grads["dense_0.W"] == 0) and np.all(grads["dense_0.b"] == 0)
    assert np.any(grads["dense_1.W"] != 0)
    assert jitbp.gradcheck(net, X, Y, "mse") < TOL  # piecewise constant: numeric slope 0 too


@pytest.mark.parametrize("bias", [True, False])
def test_dense(bias, rng):
    net = jitbp.Sequential(jitbp.layer("dense", 4, 3, bias=bias, seed=3), jitbp.layer("tanh"))
    X, Y = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    assert jitbp.gradcheck(net, X, Y, "sse") < TOL


@pytest.mark.parametrize("batch", [1, 3, 40])
def test_dense_blas_and_loop_paths(batch, rng):
    """Small and large shapes take different kernel paths (loops vs BLAS tiles)."""
    net = jitbp.Sequential(jitbp.layer("dense", 30, 40, seed=4), jitbp.layer("sigmoid"),
                           jitbp.layer("dense", 40, 2, seed=5))
    X, Y = rng.normal(size=(batch, 30)), rng.normal(size=(batch, 2))
    analytic = net.gradients(X, Y, "mse")
    numeric = jitbp.numerical_gradients(net, X, Y, "mse")
    for key in analytic:
        np.testing.assert_allclose(analytic[key], numeric[key], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kind", ["add", "concat"])
def test_join_layers(kind, rng):
    x = jitbp.Input(3)
    a = jitbp.layer("dense", 3, 4, seed=1)(x)
    b = jitbp.layer("tanh")(jitbp.layer("dense", 3, 4, seed=2)(x))
    joined = jitbp.layer(kind)(a, b)
    net = jitbp.Network(x, jitbp.layer("dense", 8 if kind == "concat" else 4, 2, seed=3)(joined))
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    assert jitbp.gradcheck(net, X, Y, "mse") < TOL


@pytest.mark.parametrize("loss", ["sse", "half_sse", "mse", "mae", "cross_entropy", "bce"])
def test_losses(loss, rng):
    layers = [jitbp.layer("dense", 3, 4, seed=1)]
    if loss == "bce":
        layers.append(jitbp.layer("sigmoid"))
    net = jitbp.Sequential(*layers)
    X = rng.normal(size=(7, 3))
    Y = {"cross_entropy": rng.integers(0, 4, size=7), "bce": rng.uniform(size=(7, 4))}.get(
        loss, rng.normal(size=(7, 4)))
    assert jitbp.gradcheck(net, X, Y, loss) < TOL


def test_gradcheck_catches_a_wrong_derivative(rng, monkeypatch):
    """The check itself can fail: a tanh whose derivative is off by 10% is caught."""
    net = single("tanh")
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    good = jitbp.gradcheck(net, X, Y, "mse")
    original = net.calls[1].layer.backward_kernel

    def wrong(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
        original(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws)
        dxs[0][...] *= 1.1

    monkeypatch.setattr(net.calls[1].layer, "backward_kernel", wrong)
    assert good < TOL < jitbp.gradcheck(net, X, Y, "mse")
