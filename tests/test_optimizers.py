"""Fused updates against each optimizer's published formula, applied to unfused gradients."""
import numpy as np
import pytest

import jitbp


def sgd(lr, momentum=0.0, nesterov=False, dampening=0.0, weight_decay=0.0):
    """Sutskever et al. momentum as torch.optim.SGD states it (buffer starts at the gradient)."""
    def step(p, g, state, t):
        g = g + weight_decay * p
        if momentum:
            state["b"] = g.copy() if t == 1 else momentum * state["b"] + (1 - dampening) * g
            g = g + momentum * state["b"] if nesterov else state["b"]
        return p - lr * g
    return step


def adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Kingma & Ba (2015), Algorithm 1."""
    b1, b2 = betas

    def step(p, g, state, t):
        g = g + weight_decay * p
        state["m"] = b1 * state.get("m", 0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0) + (1 - b2) * g * g
        m_hat = state["m"] / (1 - b1 ** t)
        v_hat = state["v"] / (1 - b2 ** t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return step


def adamw(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """Loshchilov & Hutter (2019), decoupled weight decay, as torch.optim.AdamW states it:
    the parameter decays by lr * weight_decay before Adam's step (no L2 term in g)."""
    plain = adam(lr, betas, eps)

    def step(p, g, state, t):
        return plain(p * (1 - lr * weight_decay), g, state, t)
    return step


def rmsprop(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
    """Hinton's RMSprop (lecture 6e), eps outside the root as in torch."""
    def step(p, g, state, t):
        g = g + weight_decay * p
        state["v"] = alpha * state.get("v", 0) + (1 - alpha) * g * g
        return p - lr * g / (np.sqrt(state["v"]) + eps)
    return step


def adagrad(lr=1e-2, lr_decay=0.0, eps=1e-10, weight_decay=0.0):
    """Duchi et al. (2011) diagonal Adagrad with torch's learning-rate decay."""
    def step(p, g, state, t):
        g = g + weight_decay * p
        state["s"] = state.get("s", 0) + g * g
        return p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(state["s"]) + eps)
    return step


CASES = [
    (jitbp.SGD, sgd, {"lr": 0.1}),
    (jitbp.SGD, sgd, {"lr": 0.1, "momentum": 0.9}),
    (jitbp.SGD, sgd, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (jitbp.SGD, sgd, {"lr": 0.1, "momentum": 0.8, "dampening": 0.5, "weight_decay": 0.01}),
    (jitbp.Adam, adam, {}),
    (jitbp.Adam, adam, {"lr": 0.05, "betas": (0.5, 0.75), "eps": 1e-3, "weight_decay": 0.1}),
    (jitbp.AdamW, adamw, {}),
    (jitbp.AdamW, adamw, {"lr": 0.05, "betas": (0.5, 0.75), "eps": 1e-3, "weight_decay": 0.3}),
    (jitbp.RMSprop, rmsprop, {}),
    (jitbp.RMSprop, rmsprop, {"lr": 0.05, "alpha": 0.5, "eps": 1e-3}),
    (jitbp.Adagrad, adagrad, {}),
    (jitbp.Adagrad, adagrad, {"lr": 0.2, "lr_decay": 0.1, "eps": 1e-4, "weight_decay": 0.05}),
]


def network(dtype=np.float64):
    return jitbp.Sequential(jitbp.layer("dense", 4, 3, seed=7), jitbp.layer("tanh"),
                            jitbp.layer("dense", 3, 2, seed=8), dtype=dtype)


@pytest.mark.parametrize("cls, formula, settings", CASES)
def test_fused_equals_formula_over_steps(cls, formula, settings, rng):
    X, Y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    fused, reference = network(), network()
    optimizer = cls(**settings)
    step = formula(**settings)
    states = {key: {} for key in reference.params}
    for t in range(1, 5):
        grads = reference.gradients(X, Y, "mse")
        for key, param in reference.params.items():
            param[...] = step(param, grads[key], states[key], t)
        fused.learn(X, Y, "mse", optimizer, epochs=1)
        for key in reference.params:
            np.testing.assert_allclose(fused.params[key], reference.params[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cls, formula, settings", CASES[:1] + CASES[4:5] + CASES[6:7])
def test_float32_follows_float64(cls, formula, settings, rng):
    X, Y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    low, high = network(np.float32), network(np.float64)
    low.learn(X, Y, "mse", cls(**settings), epochs=5)
    high.learn(X, Y, "mse", cls(**settings), epochs=5)
    for key in high.params:
        assert low.params[key].dtype == np.float32
        np.testing.assert_allclose(low.params[key], high.params[key], rtol=1e-4, atol=1e-5)


def test_defaults_are_torchs():
    assert jitbp.Adam().settings() == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}
    assert jitbp.RMSprop().settings() == {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0}
    assert jitbp.Adagrad().settings() == {"lr": 1e-2, "lr_decay": 0.0, "eps": 1e-10, "weight_decay": 0.0}
    assert jitbp.AdamW().settings() == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2}
    assert jitbp.SGD(0.1).settings()["momentum"] == 0.0


def numpy_gradients(params, X, Y):
    """MSE gradients of dense(30, 40) -> sigmoid -> dense(40, 5), by hand in NumPy."""
    W1, b1, W2, b2 = (params[k] for k in ("dense_0.W", "dense_0.b", "dense_1.W", "dense_1.b"))
    h = 1 / (1 + np.exp(-(X @ W1.T + b1)))
    d = 2 * (h @ W2.T + b2 - Y) / Y.size
    dz = (d @ W2) * h * (1 - h)
    return {"dense_0.W": dz.T @ X, "dense_0.b": dz.sum(0), "dense_1.W": d.T @ h, "dense_1.b": d.sum(0)}


@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize("cls, formula, settings", [CASES[0], CASES[1], CASES[4], CASES[7]])
def test_every_dense_kernel_path(batch, cls, formula, settings, rng):
    """Shapes and batches that take the streaming, online-SGD and BLAS paths (GEMM into W
    for plain SGD, tiles otherwise), against gradients computed in NumPy, over 3 steps."""
    from jitbp.layers import dense

    work = batch * 30 * 40
    assert work > dense.SMALL_MAX_WORK and (batch <= dense.STREAM_MAX_BATCH) == (batch < 64)
    net = jitbp.Sequential(jitbp.layer("dense", 30, 40, seed=1), jitbp.layer("sigmoid"),
                           jitbp.layer("dense", 40, 5, seed=2))
    X, Y = rng.normal(size=(batch, 30)), rng.normal(size=(batch, 5))
    expected = {key: value.copy() for key, value in net.params.items()}
    states = {key: {} for key in expected}
    step = formula(**settings)
    optimizer = cls(**settings)
    for t in range(1, 4):
        grads = numpy_gradients(expected, X, Y)
        for key in expected:
            expected[key] = step(expected[key], grads[key], states[key], t)
        net.learn(X, Y, "mse", optimizer, epochs=1)
    for key in expected:
        np.testing.assert_allclose(net.params[key], expected[key], rtol=1e-11, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("make_optimizer", [lambda: jitbp.SGD(lr=0.1), lambda: jitbp.Adam(lr=0.01)])
def test_float32_blas_paths_follow_float64(batch, make_optimizer, rng):
    X, Y = rng.normal(size=(batch, 30)), rng.normal(size=(batch, 5))
    nets = [jitbp.Sequential(jitbp.layer("dense", 30, 40, seed=1), jitbp.layer("sigmoid"),
                             jitbp.layer("dense", 40, 5, seed=2), dtype=dtype) for dtype in (np.float32, np.float64)]
    for net in nets:
        net.learn(X, Y, "mse", make_optimizer(), epochs=3)
    for key in nets[1].params:
        np.testing.assert_allclose(nets[0].params[key], nets[1].params[key], rtol=2e-4, atol=2e-5, err_msg=key)
