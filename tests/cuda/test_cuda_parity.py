"""Training on device="cuda" matches CPU training (float64, 1e-9) for every built-in layer,
loss and optimizer, a shared layer and fan-out graphs. Shapes are tiny: the simulator runs
one Python thread per GPU thread."""
import numpy as np
import pytest

import jitbp
from cuda_helpers import assert_close, assert_same_params, needs_cuda, train_both, twins

pytestmark = needs_cuda

ACTIVATIONS = ["sigmoid", "tanh", "relu", "identity", "step"]
OPTIMIZERS = {
    "sgd": lambda: jitbp.SGD(lr=0.1),
    "sgd-momentum": lambda: jitbp.SGD(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd-nesterov": lambda: jitbp.SGD(lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda: jitbp.Adam(lr=0.05, weight_decay=0.01),
    "adamw": lambda: jitbp.AdamW(lr=0.05, weight_decay=0.1),
    "rmsprop": lambda: jitbp.RMSprop(lr=0.01, alpha=0.9, weight_decay=0.01),
    "adagrad": lambda: jitbp.Adagrad(lr=0.1, lr_decay=0.01, weight_decay=0.01),
}


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return rng.normal(size=(5, 3)), rng.normal(size=(5, 2))


def chain(activation, bias=True):
    def build(device):
        return jitbp.Sequential(jitbp.layer("dense", 3, 4, bias=bias, seed=1), jitbp.layer(activation),
                                jitbp.layer("dense", 4, 2, seed=2), device=device)
    return build


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations(activation, data):
    train_both(chain(activation), *data)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_dense(bias, data):
    cpu, gpu = train_both(chain("tanh", bias=bias), *data, batch_size=None)
    assert ("dense_0.b" in gpu.params) == bias


def test_softmax(data):
    def build(device):
        return jitbp.Sequential(jitbp.layer("dense", 3, 3, seed=1), jitbp.layer("softmax"), device=device)
    X, _ = data
    Y = np.random.default_rng(1).dirichlet(np.ones(3), size=len(X))
    train_both(build, X, Y, loss="bce", optimizer=lambda: jitbp.SGD(lr=0.5))


def graph(device):
    """Fan-out, add and concat over two inputs: h feeds tanh and sigmoid, a feeds add and concat."""
    x1, x2 = jitbp.Input(3), jitbp.Input(2)
    h = jitbp.layer("dense", 3, 4, seed=1)(x1)
    a = jitbp.layer("tanh")(h)
    s = jitbp.layer("add")(a, jitbp.layer("sigmoid")(h), a)
    c = jitbp.layer("concat")(a, s, x2)
    return jitbp.Network([x1, x2], jitbp.layer("dense", 10, 2, seed=2)(c), device=device)


def test_fan_out_add_concat_graph(data):
    X, Y = data
    X2 = np.random.default_rng(2).normal(size=(len(X), 2))
    train_both(graph, [X, X2], Y, optimizer=OPTIMIZERS["adam"])


def shared(device):
    """One dense layer called twice (its update is applied once, with the summed gradient)."""
    d = jitbp.layer("dense", 3, 3, seed=1)
    x = jitbp.Input(3)
    h = jitbp.layer("tanh")(d(x))
    return jitbp.Network(x, jitbp.layer("dense", 3, 2, seed=2)(d(h)), device=device)


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam"])
def test_shared_layer(optimizer, data):
    cpu, gpu = train_both(shared, *data, optimizer=OPTIMIZERS[optimizer])
    assert len(gpu.shared_layers) == 1


@pytest.mark.parametrize("loss", ["sse", "half_sse", "mse", "mae", "cross_entropy", "bce"])
def test_losses(loss, data):
    X, _ = data
    rng = np.random.default_rng(3)
    head = {"bce": [jitbp.layer("sigmoid")]}.get(loss, [])
    Y = {"cross_entropy": rng.integers(0, 3, size=len(X)), "bce": rng.uniform(size=(len(X), 3))}.get(
        loss, rng.normal(size=(len(X), 3)))

    def build(device):
        return jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=1), jitbp.layer("tanh"),
                                jitbp.layer("dense", 4, 3, seed=2), *[jitbp.layer(h.kind) for h in head],
                                device=device)
    train_both(build, X, Y, loss=loss)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizers(optimizer, data):
    train_both(chain("sigmoid"), *data, optimizer=OPTIMIZERS[optimizer])


@pytest.mark.parametrize("batch_size, shuffle", [(1, True), (None, False), (2, False)],
                         ids=["online", "full-batch", "in-order"])
def test_batching(batch_size, shuffle, data):
    train_both(chain("relu"), *data, epochs=2, batch_size=batch_size, shuffle=shuffle)


def test_float32(data):
    def build(device):
        return jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=1), jitbp.layer("sigmoid"),
                                jitbp.layer("dense", 4, 2, seed=2), dtype=np.float32, device=device)
    cpu, gpu = train_both(build, *data, tol=1e-5, optimizer=OPTIMIZERS["adam"])
    assert all(p.dtype == np.float32 for p in gpu.params.values())


def test_predict_loss_gradients(data):
    X, Y = data
    X2 = np.random.default_rng(2).normal(size=(len(X), 2))
    cpu, gpu = twins(graph)
    assert_close(gpu.predict([X, X2]), cpu.predict([X, X2]), what="predict")
    for loss in ("mse", "sse"):
        assert_close(gpu.loss([X, X2], Y, loss), cpu.loss([X, X2], Y, loss), what=f"{loss} loss")
    grads_cpu, grads_gpu = cpu.gradients([X, X2], Y, "mae"), gpu.gradients([X, X2], Y, "mae")
    assert list(grads_gpu) == list(cpu.params)
    for key in grads_cpu:
        assert np.any(grads_cpu[key] != 0.0)
        assert_close(grads_gpu[key], grads_cpu[key], what=f"gradient {key}")
    assert_same_params(cpu, gpu, tol=0.0)  # gradients() changes nothing


def test_gradients_in_chunks(data, monkeypatch):
    import jitbp.network

    monkeypatch.setattr(jitbp.network, "EVAL_CHUNK", 2)  # chunks of 2, 2 and 1 samples
    X, Y = data
    cpu, gpu = twins(chain("tanh"))
    grads_cpu, grads_gpu = cpu.gradients(X, Y, "mse"), gpu.gradients(X, Y, "mse")
    for key in grads_cpu:
        assert_close(grads_gpu[key], grads_cpu[key], what=f"gradient {key}")


def test_gradients_of_shared_layer_and_gradcheck(data):
    cpu, gpu = twins(shared)
    grads_cpu, grads_gpu = cpu.gradients(*data), gpu.gradients(*data)
    for key in grads_cpu:
        assert_close(grads_gpu[key], grads_cpu[key], what=f"gradient {key}")
    assert jitbp.gradcheck(gpu, data[0][:2], data[1][:2]) < 1e-6
