"""The jitbp-conv plugin against PyTorch, and its input validation (skipped when not installed)."""
import pathlib
import sys

import numpy as np
import pytest

import jitbp

pytest.importorskip("jitbp_conv", reason="needs the conv plugin: pip install -e ./plugins/jitbp-conv")
torch = pytest.importorskip("torch", reason="the PyTorch oracle needs torch: the [test] extra")

GEOMETRIES = [(2, 3, 3, 2, 1), (1, 4, 5, 2, 2), (3, 2, 1, 1, 0), (2, 2, 4, 3, 3)]


@pytest.mark.parametrize("cin, cout, k, stride, padding", GEOMETRIES)
def test_conv1d_matches_torch(cin, cout, k, stride, padding):
    conv = jitbp.layer("conv1d", cin, cout, k, stride=stride, padding=padding, seed=1)
    x = jitbp.Input((cin, 11))
    net = jitbp.Network(x, jitbp.layer("tanh")(conv(x)))
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, cin, 11)), rng.normal(size=(5,) + net.output.shape)
    mirror = torch.nn.Conv1d(cin, cout, k, stride=stride, padding=padding, dtype=torch.float64)
    with torch.no_grad():
        mirror.weight.copy_(torch.from_numpy(conv.params["W"]))
        mirror.bias.copy_(torch.from_numpy(conv.params["b"]))
    out = torch.tanh(mirror(torch.from_numpy(X)))
    ((out - torch.from_numpy(Y)) ** 2).mean().backward()
    grads = net.gradients(X, Y, "mse")
    np.testing.assert_allclose(net.predict(X), out.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grads["conv1d_0.W"], mirror.weight.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["conv1d_0.b"], mirror.bias.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind, k, stride", [("maxpool1d", 2, None), ("maxpool1d", 3, 1), ("avgpool1d", 3, 2)])
def test_pooling_matches_torch(kind, k, stride):
    x = jitbp.Input((2, 9))
    probe = jitbp.layer("conv1d", 2, 2, 1, seed=0)  # gives the pool an input delta to check
    net = jitbp.Network(x, jitbp.layer(kind, k, stride=stride)(probe(x)))
    X = np.random.default_rng(1).normal(size=(3, 2, 9))
    t_x = torch.from_numpy(X)
    W, b = (torch.from_numpy(probe.params[key]).requires_grad_() for key in ("W", "b"))
    pool = torch.nn.functional.max_pool1d if kind == "maxpool1d" else torch.nn.functional.avg_pool1d
    out = pool(torch.nn.functional.conv1d(t_x, W, b), k, stride=stride)
    (out ** 2).sum().backward()
    grads = net.gradients(X, np.zeros(out.shape), "sse")
    np.testing.assert_allclose(net.predict(X), out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grads["conv1d_0.W"], W.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("args, kwargs, error, words", [
    ((2, 3, 0), {}, ValueError, "kernel_size"),
    (("2", 3, 3), {}, TypeError, "in_channels"),
    ((2, 3, 3), {"padding": -1}, ValueError, "padding"),
    ((2, 3, 3), {"stride": 1.5}, TypeError, "stride"),
    ((2, 3, 3), {"W": np.zeros((3, 2, 2))}, ValueError, r"W must have shape \(3, 2, 3\)"),
    ((2, 3, 3), {"bias": False, "b": np.zeros(3)}, ValueError, "bias=False"),
])
def test_conv1d_rejects_bad_arguments(args, kwargs, error, words):
    with pytest.raises(error, match=words):
        jitbp.layer("conv1d", *args, **kwargs)


@pytest.mark.parametrize("kind, args, shape, words", [
    ("conv1d", (2, 3, 3), (10,), r"per-sample shape \(channels, length\)"),
    ("conv1d", (2, 3, 3), (3, 10), "expects 2 input channel"),
    ("conv1d", (2, 3, 9), (2, 4), "larger than the \\(padded\\) input length 4"),
    ("maxpool1d", (5,), (2, 4), "kernel_size 5 is larger"),
    ("avgpool1d", (2,), (2, 3, 4), r"per-sample shape \(channels, length\)"),
])
def test_bad_input_shapes_fail_when_the_graph_is_built(kind, args, shape, words):
    with pytest.raises(jitbp.ShapeError, match=words):
        jitbp.layer(kind, *args)(jitbp.Input(shape))


def test_pool_rejects_bad_sizes():
    with pytest.raises(ValueError, match="maxpool1d stride"):
        jitbp.layer("maxpool1d", 2, stride=0)
    with pytest.raises(TypeError, match="avgpool1d kernel_size"):
        jitbp.layer("avgpool1d", None)


def test_mnist1d_example_builds_the_same_networks_as_its_torch_mirror():
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "examples"))
    try:
        import mnist1d_models as example
    finally:
        sys.path.pop(0)
    X = np.random.default_rng(0).normal(size=(4, 1, 40)).astype(np.float32)
    for model in ("logistic", "mlp", "cnn"):
        net = example.build(model)
        with torch.no_grad():
            expected = example.torch_mirror(net)(torch.from_numpy(X)).numpy()
        np.testing.assert_allclose(net.predict(X), expected, rtol=1e-4, atol=1e-5, err_msg=model)
