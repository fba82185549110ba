"""The public surface: params, graphs, batching semantics, early stopping."""
import numpy as np
import pytest

import jitbp


def mlp(dtype=np.float64):
    return jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=0), jitbp.layer("sigmoid"),
                            jitbp.layer("dense", 4, 2, seed=1), dtype=dtype)


def test_available_layers_lists_builtins_with_their_plugin():
    layers = jitbp.available_layers()
    for kind in ["dense", "sigmoid", "tanh", "relu", "identity", "step", "softmax", "add", "concat"]:
        assert layers[kind]["plugin"].startswith("jitbp.layers.")
        assert layers[kind]["description"]


def test_params_are_the_layers_arrays_in_call_order():
    first = jitbp.layer("dense", 3, 4, seed=0)
    net = jitbp.Sequential(first, jitbp.layer("relu"), jitbp.layer("dense", 4, 2, bias=False, seed=1))
    assert list(net.params) == ["dense_0.W", "dense_0.b", "dense_1.W"]
    assert net.params["dense_0.W"] is first.params["W"]
    assert first.params["W"].shape == (4, 3) and first.params["b"].shape == (4,)


def test_named_layers_and_float32_params():
    net = jitbp.Sequential(jitbp.layer("dense", 3, 2, name="encoder"), dtype=np.float32)
    assert list(net.params) == ["encoder.W", "encoder.b"]
    assert all(p.dtype == np.float32 for p in net.params.values())


def test_seeded_initialisation_is_reproducible():
    a, b = jitbp.layer("dense", 5, 3, seed=42), jitbp.layer("dense", 5, 3, seed=42)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert np.all(np.abs(a.params["W"]) <= 1 / np.sqrt(5))


def test_partial_last_batch_is_kept(rng):
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    net, reference = mlp(), mlp()
    net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=1, batch_size=2, shuffle=False)
    for rows in ([0, 1], [2, 3], [4]):
        reference.learn(X[rows], Y[rows], "mse", jitbp.SGD(lr=0.1), epochs=1)
    for key in net.params:
        np.testing.assert_allclose(net.params[key], reference.params[key], rtol=1e-14)


def test_batch_larger_than_data_is_full_batch(rng):
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    a, b = mlp(), mlp()
    a.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=2, batch_size=100)
    b.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=2, batch_size=None)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


def test_shuffle_is_seeded(rng):
    X, Y = rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    runs = []
    for seed in (1, 1, 2):
        net = mlp()
        net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=2, batch_size=2, seed=seed)
        runs.append(net.params["dense_0.W"].copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_mean_loss_history_is_the_sample_average(rng):
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    net = mlp()
    before = net.loss(X, Y, "mse")
    history = net.learn(X, Y, "mse", jitbp.SGD(lr=0.0), epochs=1, batch_size=2, shuffle=False)
    assert history[0] == pytest.approx(before, rel=1e-14)


def test_early_stopping(rng):
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    history = mlp().learn(X, Y, "mse", jitbp.SGD(lr=0.0), epochs=50, tol=1e-9, patience=3)
    assert len(history) == 4  # the first epoch sets the best loss; 3 without improvement follow
    history = mlp().learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=50, tol=0.0, patience=3)
    assert len(history) == 50  # still improving


def test_shared_layer_is_updated_once_with_the_summed_gradient(rng):
    """Adam tells one update of the summed gradient from two updates (SGD would not),
    and a trainable layer before the first call sees the pre-update shared weights."""
    x = jitbp.Input(3)
    shared = jitbp.layer("dense", 3, 3, seed=3)
    first = jitbp.layer("dense", 3, 3, seed=2)(x)
    net = jitbp.Network(x, jitbp.layer("dense", 3, 1, seed=4)(shared(jitbp.layer("tanh")(shared(first)))))
    assert list(net.params) == ["dense_0.W", "dense_0.b", "dense_1.W", "dense_1.b", "dense_2.W", "dense_2.b"]
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 1))
    before = {k: v.copy() for k, v in net.params.items()}
    grads = net.gradients(X, Y, "mse")
    numeric = jitbp.numerical_gradients(net, X, Y, "mse")
    for key in grads:
        np.testing.assert_allclose(grads[key], numeric[key], rtol=1e-6, atol=1e-10)
    optimizer = jitbp.Adam(lr=0.01)
    net.learn(X, Y, "mse", optimizer, epochs=1)
    assert optimizer.state_of(shared.params["W"])[1] == 1
    for key, value in net.params.items():
        g = grads[key]
        expected = before[key] - 0.01 * (0.1 * g / 0.1) / (np.sqrt(0.001 * g * g / 0.001) + 1e-8)
        np.testing.assert_allclose(value, expected, rtol=1e-12, err_msg=key)


def test_fan_out_sums_deltas_and_same_node_twice(rng):
    x = jitbp.Input(2)
    h = jitbp.layer("dense", 2, 3, seed=5)(x)
    doubled = jitbp.layer("add")(h, h)
    net = jitbp.Network(x, jitbp.layer("add")(doubled, jitbp.layer("tanh")(h)))
    X, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 3))
    assert jitbp.gradcheck(net, X, Y, "mse") < 1e-6


def test_multiple_inputs(rng):
    a, b = jitbp.Input(2), jitbp.Input(3)
    out = jitbp.layer("dense", 5, 1, seed=6)(jitbp.layer("concat")(a, b))
    net = jitbp.Network([a, b], out)
    Xa, Xb, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 3)), rng.normal(size=(4, 1))
    W, bias = net.params["dense_0.W"], net.params["dense_0.b"]
    np.testing.assert_allclose(net.predict([Xa, Xb]), np.hstack([Xa, Xb]) @ W.T + bias, rtol=1e-14)
    assert len(net.learn([Xa, Xb], Y, "mse", jitbp.SGD(lr=0.1), epochs=2)) == 2


def test_buffers_are_allocated_once_per_batch_size(rng):
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    net = mlp()
    net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=1, batch_size=4)
    assert net.engine._buffers.sizes() == {4, 2}
    buffers = {k: net.engine.buffers(k) for k in (4, 2)}
    net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=3, batch_size=4)
    assert all(net.engine.buffers(k) is v for k, v in buffers.items())


def test_predict_in_chunks_matches_numpy(rng, monkeypatch):
    import jitbp.network

    monkeypatch.setattr(jitbp.network, "EVAL_CHUNK", 3)
    net = mlp()
    X = rng.normal(size=(10, 3))
    W0, b0, W1, b1 = net.params.values()
    expected = (1 / (1 + np.exp(-(X @ W0.T + b0)))) @ W1.T + b1
    np.testing.assert_allclose(net.predict(X), expected, rtol=1e-13)


@pytest.mark.parametrize("loss", ["mse", "sse", "cross_entropy"])
def test_gradients_in_chunks_match_one_pass(rng, monkeypatch, loss):
    """Chunks of 3, 3, 3 and 1 samples: mean losses weight each chunk by its share."""
    import jitbp.network

    net = mlp()
    X = rng.normal(size=(10, 3))
    Y = rng.integers(0, 2, size=10) if loss == "cross_entropy" else rng.normal(size=(10, 2))
    whole = net.gradients(X, Y, loss)
    monkeypatch.setattr(jitbp.network, "EVAL_CHUNK", 3)
    chunked = net.gradients(X, Y, loss)
    for key in whole:
        np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-12, atol=1e-15, err_msg=key)


def test_a_layer_recast_by_another_network_is_reported(rng):
    layer = jitbp.layer("dense", 3, 2, seed=0)
    first = jitbp.Sequential(layer)
    jitbp.Sequential(layer, dtype=np.float32)  # takes the layer's arrays to float32
    with pytest.raises(TypeError, match="dense_0.W is a float32 array but this network is float64"):
        first.predict(rng.normal(size=(2, 3)))


def test_a_reused_activation_object_trains_on_every_path(monkeypatch, rng):
    """A parameter-free layer called twice is not a shared-parameter layer."""
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    results = []
    for mode in ("never", "always"):
        monkeypatch.setenv("JITBP_CAPTURE", mode)
        x = jitbp.Input(3)
        act = jitbp.layer("tanh")
        net = jitbp.Network(x, act(jitbp.layer("dense", 3, 3, seed=1)(act(x))))
        results.append(net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=3, batch_size=2, shuffle=False))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-13)


def test_bce_on_outputs_that_are_not_probabilities_is_a_clear_error(rng):
    net = jitbp.Sequential(jitbp.layer("dense", 3, 2, seed=0))  # no sigmoid at the end
    X, Y = rng.normal(size=(6, 3)) * 10, rng.uniform(size=(6, 2))
    before = {k: v.copy() for k, v in net.params.items()}
    for call in (lambda: net.loss(X, Y, "bce"), lambda: net.gradients(X, Y, "bce"),
                 lambda: net.learn(X, Y, "bce", jitbp.SGD(lr=0.1), epochs=2)):
        with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]: end it with a sigmoid"):
            call()
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, before[key])
