"""Contract 2 on the interpreted engine: each tier's call form, settings, mode, state, RNG."""
import numpy as np
import pytest

import jitbp
from jitbp import rng, tiers
from jitbp.errors import PluginError
from jitbp.layer import FREE, TIERS, Layer
from tier_layers import CountedScale, GradScale, Leaky, Mask


def data(seed=0, n=12):
    r = np.random.default_rng(seed)
    return r.normal(size=(n, 3)), r.normal(size=(n, 2))


def dense(n_in, n_out, seed):
    return jitbp.layer("dense", n_in, n_out, seed=seed)


def mlp(middle, seed=0):
    return jitbp.Sequential(dense(3, 4, seed), *middle, dense(4, 2, seed + 1))


def numerical_gradients(net, X, Y, loss="mse", eps=1e-6):
    grads = {}
    for key, p in net.params.items():
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = net.loss(X, Y, loss)
            flat[i] = old - eps
            down = net.loss(X, Y, loss)
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        grads[key] = g
    return grads


def test_forms_are_named_once():
    assert tiers.form(jitbp.layer("dense", 2, 2)) == tiers.CONTRACT1
    assert tiers.form(CountedScale(2)) == tiers.FUSED
    assert tiers.form(GradScale(2)) == tiers.GRADIENT
    assert tiers.form(Leaky(2)) == tiers.FREE
    assert set(tiers.FORWARD_ARGS) == set(tiers.BACKWARD_ARGS) == {tiers.CONTRACT1, *TIERS}


@pytest.mark.parametrize("middle", [
    lambda: [GradScale(4)],
    lambda: [CountedScale(4)],
    lambda: [Leaky(4, slope=0.2)],
], ids=["gradient", "fused-ctx", "free"])
def test_gradients_match_central_differences(middle):
    X, Y = data()
    net = mlp(middle())
    analytic = net.gradients(X, Y, "mse")
    numeric = numerical_gradients(net, X, Y)
    for key in analytic:
        np.testing.assert_allclose(analytic[key], numeric[key], rtol=1e-6, atol=1e-9, err_msg=key)


def test_gradients_match_torch():
    torch = pytest.importorskip("torch")
    X, Y = data(1)
    net = mlp([GradScale(4), Leaky(4, slope=0.3)])
    grads = net.gradients(X, Y, "mse")
    p = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    names = list(p)
    W1, b1, w, W2, b2 = (p[k] for k in names)
    h = torch.tensor(X) @ W1.T + b1  # dense keeps W as (n_out, n_in)
    h = torch.nn.functional.leaky_relu(h * w, 0.3)
    out = h @ W2.T + b2
    torch.nn.functional.mse_loss(out, torch.tensor(Y)).backward()
    for k in names:
        np.testing.assert_allclose(grads[k], p[k].grad.numpy(), rtol=1e-12, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("shared", [False, True], ids=["single", "shared"])
def test_gradient_tier_step_is_sgd_on_its_gradient(shared):
    """One full-batch plain SGD step moves every parameter by -lr * gradients(): the engine
    applied the scratch gradient (accumulated first when the layer is called twice)."""
    X, Y = data(2)
    scale = GradScale(4)
    net = mlp([scale, scale] if shared else [scale])
    before = {k: v.copy() for k, v in net.params.items()}
    grads = net.gradients(X, Y, "mse")
    net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=1, seed=0)
    for key, value in net.params.items():
        np.testing.assert_allclose(value, before[key] - 0.1 * grads[key], rtol=1e-12, atol=1e-15, err_msg=key)


def test_gradient_and_fused_tiers_train_alike():
    """The same maths in the gradient tier and in the fused tier with a context, Adam, mini-batches."""
    X, Y = data(3, n=20)
    runs = []
    for make in (GradScale, CountedScale):
        net = mlp([make(4)])
        history = net.learn(X, Y, "mse", jitbp.Adam(lr=0.05), epochs=4, batch_size=6, seed=5)
        runs.append((history, net.params))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-12)
    for key in runs[0][1]:
        key1 = key.replace("test_grad_scale", "test_counted_scale")
        np.testing.assert_allclose(runs[0][1][key], runs[1][1][key1], rtol=1e-12, atol=1e-15, err_msg=key)


def test_free_layer_reads_its_setting():
    X, _ = data()
    for slope in (0.0, 0.25):
        net = jitbp.Network(inp := jitbp.Input((3,)), Leaky(3, slope=slope)(inp))
        np.testing.assert_array_equal(net.predict(X), np.where(X > 0, X, slope * X))


calls = []


def recording_forward(xs, y, ctx):
    calls.append(("forward", bool(ctx.training), int(ctx.step), int(ctx.seed)))
    y[...] = xs[0]


def recording_backward(xs, y, dy, dxs, ctx):
    calls.append(("backward", bool(ctx.training), int(ctx.step), int(ctx.seed)))
    dxs[0][...] = dy


class Recorder(Layer):
    """A free layer with plain Python kernels: records each call's context."""

    kind = "test_recorder"
    tier = FREE
    forward_kernel = recording_forward
    backward_kernel = recording_backward


def test_free_backward_is_skipped_without_input_delta_and_contexts_carry_step_and_seed():
    X, Y = data(n=10)
    inp = jitbp.Input((3,))
    net = jitbp.Network(inp, dense(3, 2, 0)(Recorder()(inp)))
    optimizer = jitbp.SGD(lr=0.01)
    calls.clear()
    net.learn(X, Y, "mse", optimizer, epochs=2, batch_size=4, shuffle=False, seed=7)
    key = int(rng.call_seed(7, 0))
    assert calls == [("forward", True, step, key) for step in range(1, 7)]  # 3 batches x 2 epochs
    calls.clear()
    net.learn(X, Y, "mse", optimizer, epochs=1, batch_size=10, seed=8)
    assert calls == [("forward", True, 7, int(rng.call_seed(8, 0)))]  # the optimizer's steps continue
    calls.clear()
    net.learn(X, Y, "mse", jitbp.SGD(lr=0.01), epochs=1, batch_size=10, seed=8)
    assert calls == [("forward", True, 1, int(rng.call_seed(8, 0)))]  # a new optimizer starts again
    calls.clear()
    net.predict(X)
    assert calls == [("forward", False, 0, int(rng.call_seed(0, 0)))]


def test_free_backward_runs_when_an_input_delta_is_needed():
    X, Y = data(n=4)
    inp = jitbp.Input((3,))
    net = jitbp.Network(inp, Recorder()(dense(3, 2, 0)(inp)))
    calls.clear()
    net.gradients(X, Y, "mse")
    assert calls == [("forward", True, 1, int(rng.call_seed(0, 1))), ("backward", True, 1, int(rng.call_seed(0, 1)))]


def test_random_mask_repeats_with_its_seed():
    X, Y = data(4, n=16)
    histories = []
    for seed in (11, 11, 12):
        net = mlp([Mask(4, p=0.5)])
        histories.append((list(net.learn(X, Y, "mse", jitbp.SGD(lr=0.05), epochs=3, batch_size=4, seed=seed)),
                          net.params))
    assert histories[0][0] == histories[1][0]
    for key in histories[0][1]:
        np.testing.assert_array_equal(histories[0][1][key], histories[1][1][key])
    assert histories[0][0] != histories[2][0]


def test_random_mask_is_identity_in_prediction_and_zero_p_trains_like_none():
    X, Y = data(5, n=16)
    net = mlp([Mask(4, p=0.5)])
    inner = jitbp.Network(inp := jitbp.Input((3,)), Mask(3, p=0.9)(inp))
    np.testing.assert_array_equal(inner.predict(X), X)
    masked, plain = mlp([Mask(4, p=0.0)]), mlp([])
    h1 = masked.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=3, batch_size=5, seed=1)
    h2 = plain.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=3, batch_size=5, seed=1)
    assert list(h1) == list(h2)
    for a, b in zip(masked.params.values(), plain.params.values()):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(net.predict(X)).all()


def test_mask_keeps_about_one_minus_p_in_training():
    X = np.ones((400, 4))
    net = jitbp.Network(inp := jitbp.Input((4,)), Mask(4, p=0.25)(inp))
    bufs = net.engine.buffers(400)
    out = net.engine.forward(bufs, [X], [])  # a tape: training mode
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.03
    np.testing.assert_allclose(out[kept], 1 / 0.75)


def test_state_counts_training_forwards_only():
    X, Y = data(6, n=10)
    scale = CountedScale(4)
    net = mlp([scale])
    net.learn(X, Y, "mse", jitbp.SGD(lr=0.01), epochs=2, batch_size=5, seed=0)
    assert scale.state["count"][0] == 4
    net.predict(X)
    net.loss(X, Y)
    assert scale.state["count"][0] == 4
    net.gradients(X, Y)
    assert scale.state["count"][0] == 5


def test_seed_none_is_drawn_and_recorded():
    X, Y = data(7, n=16)
    net = mlp([Mask(4, p=0.5)])
    start = {k: v.copy() for k, v in net.params.items()}
    history = net.learn(X, Y, "mse", jitbp.SGD(lr=0.05), epochs=2, batch_size=4)
    assert isinstance(history.seed, int)
    again = mlp([Mask(4, p=0.5)])
    for key, value in start.items():
        again.params[key][...] = value
    repeat = again.learn(X, Y, "mse", jitbp.SGD(lr=0.05), epochs=2, batch_size=4, seed=history.seed)
    assert list(repeat) == list(history)


class BadSetting(Leaky):
    kind = "test_bad_setting"

    def __init__(self, value):
        super().__init__(3)
        self.value = value

    def settings(self):
        return {"slope": self.value}


@pytest.mark.parametrize("value, error, words", [
    (float("nan"), ValueError, "must be finite"),
    ("0.1", TypeError, "must be an int or a float"),
    (True, TypeError, "must be an int or a float"),
    (2**60, ValueError, "is too large"),
])
def test_bad_settings_are_refused_when_the_network_is_built(value, error, words):
    inp = jitbp.Input((3,))
    with pytest.raises(error, match=f"test_bad_setting_0.*'slope' {words}"):
        jitbp.Network(inp, BadSetting(value)(inp))


def test_free_layer_with_parameters_is_refused():
    layer = Leaky(3)
    layer.params["w"] = np.ones(3)
    inp = jitbp.Input((3,))
    with pytest.raises(PluginError, match="free-tier"):
        jitbp.Network(inp, layer(inp))


def test_state_is_cast_to_the_network_dtype():
    scale = CountedScale(4)
    net = jitbp.Sequential(dense(3, 4, 0), scale, dense(4, 2, 1), dtype=np.float32)
    assert scale.state["count"].dtype == np.float32
    X, Y = data()
    net.learn(X.astype(np.float32), Y.astype(np.float32), "mse", jitbp.SGD(lr=0.01), epochs=1, seed=0)
    assert scale.state["count"][0] == 1
