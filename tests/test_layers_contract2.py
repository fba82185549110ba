"""The contract-2 built-in layers against PyTorch (float64) and central differences.

Kernels are called directly with a hand-built Context (``run_forward`` /
``run_backward``), so these tests need no engine support; the trajectory tests at
the end train through ``Network.learn``.
"""
import numpy as np
import pytest

import jitbp
from jitbp.context import Context
from jitbp.errors import ShapeError
from jitbp.layer import FREE, GRADIENT
from jitbp.rng import uniform
from jitbp.testing import contract2_cases

torch = pytest.importorskip("torch", reason="the PyTorch oracle needs torch: the [test] extra")
F = torch.nn.functional

RTOL = 1e-8


#: kind, constructor kwargs, the torch function of x.
SMOOTH = {
    "leaky_relu": ({"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
    "leaky_relu_default": ({}, lambda x: F.leaky_relu(x)),
    "elu": ({"alpha": 0.7}, lambda x: F.elu(x, 0.7)),
    "gelu": ({}, lambda x: F.gelu(x)),
    "gelu_tanh": ({"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh")),
    "silu": ({}, F.silu),
    "softplus": ({}, F.softplus),
    "softplus_beta": ({"beta": 2.0, "threshold": 1.5}, lambda x: F.softplus(x, 2.0, 1.5)),
}


# -- calling kernels by hand -------------------------------------------------------------------------


def context(layer, training=True, ws=(), seed=7, step=1):
    settings = np.array(list(layer.settings().values()), dtype=np.float64)
    return Context(training, settings, tuple(layer.state.values()), ws, np.uint64(seed), np.int64(step))


def workspaces(layer, x):
    return tuple(np.full(s, np.nan, x.dtype) for s in layer.workspace_shapes(x.shape[0], [x.shape[1:]]))


def run_forward(layer, x, ctx):
    y = np.full_like(x, np.nan)
    if layer.tier == FREE:
        layer.forward_kernel((x,), y, ctx)
    else:
        layer.forward_kernel((x,), tuple(layer.params.values()), y, ctx)
    return y


def run_backward(layer, x, y, dy, ctx):
    """``(dx, grads)`` of the layer's backward kernel (grads filled with NaN first)."""
    dx = np.full_like(x, np.nan)
    params = tuple(layer.params.values())
    grads = tuple(np.full_like(p, np.nan) for p in params)
    if layer.tier == FREE:
        layer.backward_kernel((x,), y, dy, (dx,), ctx)
    else:
        layer.backward_kernel((x,), y, dy, (dx,), True, params, grads, ctx)
    return dx, grads


def torch_grads(fn, x, dy, *params):
    """``(y, dx, param grads)`` of ``fn(x, *params)`` in torch, with output delta ``dy``."""
    tx = torch.tensor(x, requires_grad=True)
    tp = [torch.tensor(p, requires_grad=True) for p in params]
    ty = fn(tx, *tp)
    ty.backward(torch.tensor(dy))
    return ty.detach().numpy(), tx.grad.numpy(), [p.grad.numpy() for p in tp]


def close(actual, expected, what, rtol=RTOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-12, err_msg=what)


def close_to_scale(actual, expected, what, rtol=1e-6):
    """Central differences: the largest error relative to the largest derivative."""
    scale = max(float(np.max(np.abs(expected))), 1e-3)
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def central(objective, array, eps=1e-6):
    grad = np.empty_like(array)
    flat, out = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        upper = objective()
        flat[i] = saved - eps
        lower = objective()
        flat[i] = saved
        out[i] = (upper - lower) / (2 * eps)
    return grad


@pytest.fixture
def x():
    """Samples around zero and in the tails (softplus's threshold, exp's range)."""
    values = np.random.default_rng(3).normal(scale=2.0, size=(4, 6))
    values[0, :4] = [-30.0, 25.0, 0.0, 1e-9]
    return values


@pytest.mark.parametrize("case", contract2_cases(), ids=lambda case: case.id)
def test_kit_cases_build_and_are_registered_with_cuda_twins(case):
    layer = case.make()
    assert layer.output_shape(case.input_shapes) == case.input_shapes[0]
    info = jitbp.available_layers()[case.kind]
    assert info["plugin"].startswith("jitbp.layers.") and info["cuda"], info


# -- free-tier activations ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_matches_torch(name, x):
    kwargs, fn = SMOOTH[name]
    layer = jitbp.layer(name.split("_default")[0].replace("_tanh", "").replace("_beta", ""), **kwargs)
    assert layer.tier == FREE and not layer.params
    dy = np.random.default_rng(4).normal(size=x.shape)
    ctx = context(layer)
    y = run_forward(layer, x, ctx)
    dx, _ = run_backward(layer, x, y, dy, ctx)
    ty, tdx, _ = torch_grads(fn, x, dy)
    close(y, ty, "forward")
    close(dx, tdx, "input delta")
    smooth = np.abs(x) > 1e-3  # away from kinks (leaky_relu, elu at 0)
    numeric = central(lambda: float(np.sum(dy * run_forward(layer, x, ctx))), x)
    close_to_scale(dx[smooth], numeric[smooth], "central differences")


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_float32_agrees(name, x):
    kwargs, _ = SMOOTH[name]
    layer = jitbp.layer(name.split("_default")[0].replace("_tanh", "").replace("_beta", ""), **kwargs)
    ctx = context(layer)
    x32 = x.astype(np.float32)
    y32 = run_forward(layer, x32, ctx)
    assert y32.dtype == np.float32
    close(y32, run_forward(layer, x32.astype(np.float64), ctx), "float32 forward", rtol=1e-5)


def test_settings_and_config_round_trip():
    for kind, kwargs, settings in [("leaky_relu", {"negative_slope": 0.3}, {"negative_slope": 0.3}),
                                   ("elu", {"alpha": 2.0}, {"alpha": 2.0}),
                                   ("gelu", {"approximate": "tanh"}, {"tanh": 1}),
                                   ("gelu", {}, {"tanh": 0}),
                                   ("silu", {}, {}),
                                   ("softplus", {"beta": 3.0, "threshold": 5.0}, {"beta": 3.0, "threshold": 5.0}),
                                   ("dropout", {"p": 0.25}, {"p": 0.25}),
                                   ("batchnorm", {"n": 3, "momentum": 0.2}, {"momentum": 0.2, "eps": 1e-5}),
                                   ("layernorm", {"shape": 3, "eps": 1e-3}, {"eps": 1e-3})]:
        layer = jitbp.layer(kind, **kwargs)
        assert layer.settings() == settings, kind
        rebuilt = jitbp.layer(kind, **layer.config())
        assert rebuilt.config() == layer.config() and rebuilt.settings() == settings, kind


@pytest.mark.parametrize("kind, args, kwargs, error, words", [
    ("dropout", (1.0,), {}, ValueError, "must be a finite number in [0, 1)"),
    ("dropout", (-0.1,), {}, ValueError, "must be a finite number in [0, 1)"),
    ("dropout", ("half",), {}, TypeError, "p (the probability of zeroing an element) must be a number"),
    ("leaky_relu", (float("nan"),), {}, ValueError, "negative_slope must be a finite number"),
    ("elu", ("1",), {}, TypeError, "alpha must be a number"),
    ("gelu", ("erf",), {}, ValueError, "approximate must be 'none' or 'tanh'"),
    ("softplus", (0.0,), {}, ValueError, "beta must be a finite number in (0, inf)"),
    ("softplus", (1.0, float("inf")), {}, ValueError, "threshold must be a finite number, got inf"),
    ("batchnorm", (0,), {}, ValueError, "batchnorm: n"),
    ("batchnorm", (2.5,), {}, TypeError, "batchnorm: n"),
    ("batchnorm", (3,), {"momentum": 1.5}, ValueError, "momentum must be a finite number in [0, 1]"),
    ("batchnorm", (3,), {"eps": 0.0}, ValueError, "eps must be a finite number in (0, inf)"),
    ("layernorm", (0,), {}, ValueError, "layernorm: shape"),
    ("layernorm", ([],), {}, TypeError, "layernorm: shape"),
    ("layernorm", (3,), {"elementwise_affine": 1}, TypeError, "elementwise_affine must be True or False"),
    ("layernorm", (3,), {"eps": -1.0}, ValueError, "eps must be a finite number in (0, inf)"),
])
def test_bad_arguments(kind, args, kwargs, error, words):
    with pytest.raises(error) as info:
        jitbp.layer(kind, *args, **kwargs)
    assert words in str(info.value)


def test_wrong_input_shapes_name_the_layer():
    with pytest.raises(ShapeError, match=r"batchnorm\(4\) takes samples of shape"):
        jitbp.Sequential(jitbp.layer("dense", 3, 5, seed=0), jitbp.layer("batchnorm", 4))
    with pytest.raises(ShapeError, match=r"layernorm\(4,\) normalises samples whose shape ends with"):
        jitbp.Sequential(jitbp.layer("dense", 3, 5, seed=0), jitbp.layer("layernorm", 4))


# -- dropout -------------------------------------------------------------------------------------------


def dropout_pass(p, x, seed=11, step=3, training=True, dy=None):
    layer = jitbp.layer("dropout", p)
    ctx = context(layer, training=training, seed=seed, step=step)
    y = run_forward(layer, x, ctx)
    dx, _ = run_backward(layer, x, y, np.ones_like(x) if dy is None else dy, ctx)
    return y, dx


def test_dropout_mask_is_the_counter_stream(x):
    p = 0.4
    y, dx = dropout_pass(p, x)
    mask = np.array([uniform(np.uint64(11), np.int64(3), i) >= p for i in range(x.size)]).reshape(x.shape)
    np.testing.assert_array_equal(y, np.where(mask, x * (1 / (1 - p)), 0.0))
    np.testing.assert_array_equal(dx, np.where(mask, 1 / (1 - p), 0.0))


def test_dropout_same_key_repeats_other_keys_differ(x):
    first, again = dropout_pass(0.5, x), dropout_pass(0.5, x)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], dropout_pass(0.5, x, step=4)[0]), "the mask must change with the step"
    assert not np.array_equal(first[0], dropout_pass(0.5, x, seed=12)[0]), "the mask must change with the seed"


def test_dropout_p0_and_prediction_are_the_identity(x):
    for y, dx in (dropout_pass(0.0, x), dropout_pass(0.7, x, training=False)):
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(dx, np.ones_like(x))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_fraction_and_expected_scale(p):
    ones = np.ones((200, 100))
    y, _ = dropout_pass(p, ones)
    dropped = float(np.mean(y == 0.0))
    assert abs(dropped - p) < 4 * np.sqrt(p * (1 - p) / y.size), f"dropped {dropped:.4f}, expected {p}"
    np.testing.assert_allclose(y[y != 0.0], 1 / (1 - p), rtol=1e-15)
    assert abs(float(np.mean(y)) - 1.0) < 4 * np.sqrt(p / (1 - p) / y.size), "E[y] must equal x"


def test_dropout_gradients_equal_torch_with_the_same_mask(x):
    p = 0.3
    dy = np.random.default_rng(5).normal(size=x.shape)
    y, dx = dropout_pass(p, x, dy=dy)
    kept = [uniform(np.uint64(11), np.int64(3), i) >= p for i in range(x.size)]
    mask = torch.tensor(np.array(kept, dtype=np.float64).reshape(x.shape))
    ty, tdx, _ = torch_grads(lambda t: t * mask / (1 - p), x, dy)
    close(y, ty, "forward")
    close(dx, tdx, "input delta")


# -- batchnorm and layernorm ---------------------------------------------------------------------------


def torch_batchnorm(layer):
    module = torch.nn.BatchNorm1d(layer.n, momentum=layer.momentum, eps=layer.eps).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor(layer.params["gamma"]))
        module.bias.copy_(torch.tensor(layer.params["beta"]))
    return module


@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 6)], ids=["dense", "conv1d"])
def test_batchnorm_matches_torch(shape):
    rng = np.random.default_rng(8)
    layer = jitbp.layer("batchnorm", 4, momentum=0.3, eps=1e-4)
    layer.params["gamma"][:] = rng.uniform(0.5, 1.5, 4)
    layer.params["beta"][:] = rng.normal(size=4)
    module = torch_batchnorm(layer)
    for call in range(3):
        x = rng.normal(loc=call, scale=1 + call, size=shape)
        dy = rng.normal(size=shape)
        ctx = context(layer, ws=workspaces(layer, x))
        y = run_forward(layer, x, ctx)
        dx, (dgamma, dbeta) = run_backward(layer, x, y, dy, ctx)
        module.zero_grad()
        ty, tdx, _ = torch_grads(module, x, dy)
        tgamma, tbeta = module.weight.grad.numpy(), module.bias.grad.numpy()
        close(y, ty, f"call {call}: forward")
        close(dx, tdx, f"call {call}: input delta")
        close(dgamma, tgamma, f"call {call}: gamma gradient")
        close(dbeta, tbeta, f"call {call}: beta gradient")
        close(layer.state["running_mean"], module.running_mean.numpy(), f"call {call}: running mean")
        close(layer.state["running_var"], module.running_var.numpy(), f"call {call}: running var")
    module.eval()
    x = rng.normal(size=shape)
    stats = {key: value.copy() for key, value in layer.state.items()}
    ctx = context(layer, training=False, ws=workspaces(layer, x), step=0)
    close(run_forward(layer, x, ctx), module(torch.tensor(x)).detach().numpy(), "eval forward")
    for key, value in layer.state.items():
        np.testing.assert_array_equal(value, stats[key], err_msg=f"prediction changed {key}")


def test_batchnorm_central_differences():
    rng = np.random.default_rng(9)
    layer = jitbp.layer("batchnorm", 3)
    layer.params["gamma"][:] = rng.uniform(0.5, 1.5, 3)
    x = rng.normal(size=(4, 3, 2))
    dy = rng.normal(size=x.shape)
    state = {key: value.copy() for key, value in layer.state.items()}

    def objective():
        for key, value in state.items():
            layer.state[key][:] = value
        return float(np.sum(dy * run_forward(layer, x, context(layer, ws=workspaces(layer, x)))))

    ctx = context(layer, ws=workspaces(layer, x))
    dx, (dgamma, dbeta) = run_backward(layer, x, run_forward(layer, x, ctx), dy, ctx)
    close_to_scale(dx, central(objective, x), "input delta")
    close_to_scale(dgamma, central(objective, layer.params["gamma"]), "gamma gradient")
    close_to_scale(dbeta, central(objective, layer.params["beta"]), "beta gradient")


def test_batchnorm_refuses_one_value_per_channel_in_training():
    layer = jitbp.layer("batchnorm", 3)
    x = np.ones((1, 3))
    with pytest.raises(ValueError, match="more than one value per channel"):
        run_forward(layer, x, context(layer, ws=workspaces(layer, x)))
    run_forward(layer, x, context(layer, training=False, ws=workspaces(layer, x)))  # prediction is fine


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("sample", [(6,), (2, 6)], ids=["flat", "rows"])
def test_layernorm_matches_torch(affine, sample):
    rng = np.random.default_rng(10)
    layer = jitbp.layer("layernorm", 6, eps=1e-3, elementwise_affine=affine)
    params = []
    if affine:
        layer.params["gamma"][:] = rng.uniform(0.5, 1.5, 6)
        layer.params["beta"][:] = rng.normal(size=6)
        params = [layer.params["gamma"], layer.params["beta"]]
    x = rng.normal(loc=2.0, scale=3.0, size=(3,) + sample)
    dy = rng.normal(size=x.shape)
    ctx = context(layer, ws=workspaces(layer, x))
    y = run_forward(layer, x, ctx)
    dx, grads = run_backward(layer, x, y, dy, ctx)
    ty, tdx, tgrads = torch_grads(lambda t, *wb: F.layer_norm(t, (6,), *wb, eps=1e-3), x, dy, *params)
    close(y, ty, "forward")
    close(dx, tdx, "input delta")
    for name, g, tg in zip(("gamma", "beta"), grads, tgrads):
        close(g, tg, f"{name} gradient")
    objective = lambda: float(np.sum(dy * run_forward(layer, x, ctx)))  # noqa: E731
    close_to_scale(dx, central(objective, x), "central differences")


def test_layernorm_multi_dimensional_shape():
    rng = np.random.default_rng(12)
    layer = jitbp.layer("layernorm", (2, 3))
    layer.params["gamma"][:] = rng.uniform(0.5, 1.5, (2, 3))
    x = rng.normal(size=(4, 2, 3))
    dy = rng.normal(size=x.shape)
    ctx = context(layer, ws=workspaces(layer, x))
    y = run_forward(layer, x, ctx)
    dx, (dgamma, dbeta) = run_backward(layer, x, y, dy, ctx)
    ty, tdx, (tg, tb) = torch_grads(lambda t, w, b: F.layer_norm(t, (2, 3), w, b), x, dy,
                                    layer.params["gamma"], layer.params["beta"])
    close(y, ty, "forward")
    close(dx, tdx, "input delta")
    close(dgamma, tg, "gamma gradient")
    close(dbeta, tb, "beta gradient")


def test_declared_shapes_match_the_layers():
    for kind, kwargs in [("batchnorm", {"n": 3}), ("layernorm", {"shape": [2, 3]}),
                         ("layernorm", {"shape": 4, "elementwise_affine": False})]:
        layer = jitbp.layer(kind, **kwargs)
        assert layer.tier == GRADIENT
        cls = type(layer)
        assert cls.param_shapes(**layer.config()) == {k: v.shape for k, v in layer.params.items()}, kind
        assert cls.state_shapes(**layer.config()) == {k: v.shape for k, v in layer.state.items()}, kind


# -- through Network.learn / predict: float64 trajectories against torch ---------------------------


def torch_module(net, layer, masks=None):
    """The torch module of one jitbp layer, holding copies of its parameters and state."""
    kind = layer.kind
    if kind == "dense":
        W = layer.params["W"]
        module = torch.nn.Linear(W.shape[1], W.shape[0], bias="b" in layer.params).double()
        with torch.no_grad():
            module.weight.copy_(torch.tensor(W))
            if "b" in layer.params:
                module.bias.copy_(torch.tensor(layer.params["b"]))
        return module
    if kind == "batchnorm":
        module = torch_batchnorm(layer)
        with torch.no_grad():
            module.running_mean.copy_(torch.tensor(layer.state["running_mean"]))
            module.running_var.copy_(torch.tensor(layer.state["running_var"]))
        return module
    if kind == "layernorm":
        module = torch.nn.LayerNorm(layer.shape, eps=layer.eps, elementwise_affine=layer.elementwise_affine).double()
        if layer.elementwise_affine:
            with torch.no_grad():
                module.weight.copy_(torch.tensor(layer.params["gamma"]))
                module.bias.copy_(torch.tensor(layer.params["beta"]))
        return module
    if kind == "dropout":
        return SameMaskDropout(layer.p, masks)
    return {"tanh": torch.nn.Tanh(), "relu": torch.nn.ReLU(), "leaky_relu": torch.nn.LeakyReLU(layer.settings().get("negative_slope", 0.0)),
            "elu": torch.nn.ELU(layer.settings().get("alpha", 1.0)), "silu": torch.nn.SiLU(),
            "gelu": torch.nn.GELU(approximate=getattr(layer, "approximate", "none")),
            "softplus": torch.nn.Softplus(getattr(layer, "beta", 1.0), getattr(layer, "threshold", 20.0))}[kind]


class SameMaskDropout(torch.nn.Module):
    """Dropout whose masks are jitbp's: ``masks()`` gives the next training step's."""

    def __init__(self, p, masks):
        super().__init__()
        self.p, self.masks = p, masks

    def forward(self, x):
        if not self.training:
            return x
        return x * torch.tensor(self.masks(x.shape)) / (1 - self.p)


def torch_twin(net, masks=None):
    return torch.nn.Sequential(*[torch_module(net, node.layer, masks) for node in net.calls])


def torch_run(model, X, Y, optimizer, epochs, batch_size):
    """Train ``model`` like ``learn(..., shuffle=False)`` with mse; returns per-epoch losses."""
    params = [p for p in model.parameters()]
    opt = {jitbp.SGD: torch.optim.SGD, jitbp.Adam: torch.optim.Adam}[type(optimizer)](
        params, **{k: tuple(v) if k == "betas" else v for k, v in optimizer.settings().items()})
    model.train()
    history = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch_size):
            opt.zero_grad()
            value = F.mse_loss(model(torch.tensor(X[start:start + batch_size])),
                               torch.tensor(Y[start:start + batch_size]))
            value.backward()
            opt.step()
            total += value.item() * len(X[start:start + batch_size]) / len(X)
        history.append(total)
    return history


def assert_same_as_torch(net, model, what):
    modules = list(model)
    for node, module in zip(net.calls, modules):
        layer, name = node.layer, net.layer_names[id(node.layer)]
        pairs = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias"}
        for key, value in layer.params.items():
            close(value, getattr(module, pairs[key]).detach().numpy(), f"{what}: {name}.{key}")
        for key, value in layer.state.items():
            close(value, getattr(module, key).numpy(), f"{what}: {name} state {key}")


MIDDLE = {
    "batchnorm": lambda: jitbp.layer("batchnorm", 6, momentum=0.3),
    "layernorm": lambda: jitbp.layer("layernorm", 6),
    "layernorm_plain": lambda: jitbp.layer("layernorm", 6, elementwise_affine=False),
    "leaky_relu": lambda: jitbp.layer("leaky_relu", 0.1),
    "elu": lambda: jitbp.layer("elu", 0.8),
    "gelu": lambda: jitbp.layer("gelu"),
    "gelu_tanh": lambda: jitbp.layer("gelu", approximate="tanh"),
    "silu": lambda: jitbp.layer("silu"),
    "softplus": lambda: jitbp.layer("softplus", 1.5, 2.0),
}
TRAIN_OPTIMIZERS = {"adam": lambda: jitbp.Adam(lr=0.01), "sgd_momentum": lambda: jitbp.SGD(lr=0.05, momentum=0.9)}


def mlp(middle, seed=0):
    # no bias before batchnorm: its exact gradient is zero, so its steps would be rounding noise
    bias = middle.kind != "batchnorm"
    return jitbp.Sequential(jitbp.layer("dense", 4, 6, bias=bias, seed=seed), middle, jitbp.layer("tanh"),
                            jitbp.layer("dense", 6, 3, seed=seed + 1))


@pytest.fixture
def regression():
    rng = np.random.default_rng(21)
    return rng.normal(size=(12, 4)), rng.normal(size=(12, 3))


@pytest.mark.parametrize("opt", TRAIN_OPTIMIZERS)
@pytest.mark.parametrize("name", MIDDLE)
def test_training_trajectory_matches_torch(name, opt, regression):
    X, Y = regression
    net = mlp(MIDDLE[name]())
    model = torch_twin(net)
    expected = torch_run(model, X, Y, TRAIN_OPTIMIZERS[opt](), epochs=3, batch_size=4)
    history = net.learn(X, Y, "mse", TRAIN_OPTIMIZERS[opt](), epochs=3, batch_size=4, shuffle=False, seed=1)
    np.testing.assert_allclose(list(history), expected, rtol=RTOL)
    assert_same_as_torch(net, model, "after training")
    model.eval()
    with torch.no_grad():
        close(net.predict(X), model(torch.tensor(X)).numpy(), "eval-mode predictions")


def test_batchnorm_over_conv1d_channels_trains_like_torch():
    """(batch, channels, length) samples: per-channel statistics, as BatchNorm1d on conv1d outputs."""
    rng = np.random.default_rng(22)
    X, Y = rng.normal(size=(6, 2, 5)), rng.normal(size=(6, 2, 5))
    layer = jitbp.layer("batchnorm", 2, momentum=0.2)
    x = jitbp.Input((2, 5))
    net = jitbp.Network(x, jitbp.layer("tanh")(layer(x)))
    layer.params["gamma"][:] = [0.7, 1.3]
    model = torch.nn.Sequential(torch_batchnorm(layer), torch.nn.Tanh())
    expected = torch_run(model, X, Y, jitbp.Adam(lr=0.05), epochs=2, batch_size=3)
    history = net.learn(X, Y, "mse", jitbp.Adam(lr=0.05), epochs=2, batch_size=3, shuffle=False, seed=0)
    np.testing.assert_allclose(list(history), expected, rtol=RTOL)
    assert_same_as_torch(net, model, "after training")
    model.eval()
    with torch.no_grad():
        close(net.predict(X), model(torch.tensor(X)).numpy(), "eval-mode predictions")


def dropout_net(p, seed=0):
    return jitbp.Sequential(jitbp.layer("dense", 4, 8, seed=seed), jitbp.layer("tanh"), jitbp.layer("dropout", p),
                            jitbp.layer("dense", 8, 3, seed=seed + 1))


def test_dropout_trajectory_equals_torch_fed_jitbp_masks(regression):
    X, Y = regression
    p, run_seed, call = 0.4, 5, 2
    net = dropout_net(p)
    key, steps = jitbp.rng.call_seed(run_seed, call), iter(range(1, 100))

    def masks(shape):
        step = next(steps)
        size = int(np.prod(shape))
        return np.array([uniform(key, np.int64(step), i) >= p for i in range(size)], np.float64).reshape(shape)

    model = torch_twin(net, masks)
    expected = torch_run(model, X, Y, jitbp.Adam(lr=0.01), epochs=2, batch_size=4)
    history = net.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=2, batch_size=4, shuffle=False, seed=run_seed)
    np.testing.assert_allclose(list(history), expected, rtol=RTOL)
    assert_same_as_torch(net, model, "after training")
    model.eval()
    with torch.no_grad():
        close(net.predict(X), model(torch.tensor(X)).numpy(), "eval-mode predictions (dropout is the identity)")


def test_dropout_runs_repeat_bit_for_bit_with_the_seed(regression):
    X, Y = regression
    runs = []
    for seed in (3, 3, 4):
        net = dropout_net(0.5)
        history = net.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=2, batch_size=4, seed=seed)
        runs.append((list(history), {k: v.copy() for k, v in net.params.items()}))
    assert runs[0][0] == runs[1][0]
    for key in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][key], runs[1][1][key], err_msg=key)
    assert runs[0][0] != runs[2][0], "another seed must give other masks"


def test_dropout_p0_trains_exactly_like_no_dropout(regression):
    X, Y = regression
    with_dropout = dropout_net(0.0)
    without = jitbp.Sequential(jitbp.layer("dense", 4, 8, seed=0), jitbp.layer("tanh"),
                               jitbp.layer("dense", 8, 3, seed=1))
    histories = [net.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=3, batch_size=4, seed=9)
                 for net in (with_dropout, without)]
    assert list(histories[0]) == list(histories[1])
    for (k1, v1), (k2, v2) in zip(with_dropout.params.items(), without.params.items()):
        np.testing.assert_array_equal(v1, v2, err_msg=f"{k1} vs {k2}")
    np.testing.assert_array_equal(with_dropout.predict(X), without.predict(X))


def test_batchnorm_state_is_saved_and_loaded(tmp_path, regression):
    X, Y = regression
    net = mlp(jitbp.layer("batchnorm", 6))
    net.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=2, batch_size=4, seed=0)
    assert not np.allclose(net.layers[1].state["running_mean"], 0.0), "training must move the running mean"
    path = tmp_path / "bn.jitbp"
    net.save(path)
    loaded = jitbp.load(path)
    for key, value in net.layers[1].state.items():
        np.testing.assert_array_equal(loaded.layers[1].state[key], value, err_msg=key)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_captured_epoch_equals_the_interpreted_tape(monkeypatch, regression):
    """Dropout masks, batchnorm statistics and the gradient tier agree on both paths."""
    X, Y = regression
    runs = []
    for mode in ("never", "always"):
        monkeypatch.setenv("JITBP_CAPTURE", mode)
        net = jitbp.Sequential(jitbp.layer("dense", 4, 6, seed=0), jitbp.layer("batchnorm", 6),
                               jitbp.layer("gelu"), jitbp.layer("dropout", 0.3), jitbp.layer("dense", 6, 3, seed=1))
        history = net.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=2, batch_size=4, seed=4)
        runs.append((list(history), net))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-12)
    (_, interpreted), (_, captured) = runs
    for key, value in interpreted.params.items():
        np.testing.assert_allclose(captured.params[key], value, rtol=1e-12, atol=1e-14, err_msg=key)
    for key, value in interpreted.layers[1].state.items():
        np.testing.assert_allclose(captured.layers[1].state[key], value, rtol=1e-12, atol=1e-14, err_msg=key)


def test_dropout_batchnorm_example_learns_digits(monkeypatch, capsys):
    import pathlib
    import sys

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parents[1] / "examples"))
    import dropout_batchnorm

    results = dropout_batchnorm.main(["--epochs", "2", "--data", "digits"])
    assert results["digits"] > 0.6, f"eval-mode accuracy {results['digits']:.1%} after 2 epochs (chance: 10%)"
    assert "eval-mode test accuracy" in capsys.readouterr().out
    del sys.modules["dropout_batchnorm"]


CACHE_PROBE = """
import json, numpy as np, jitbp
from test_layers_contract2 import context, run_backward, run_forward, workspaces
report = {}
for kind, args in [("dropout", (0.3,)), ("batchnorm", (3,)), ("layernorm", (3,)), ("gelu", ()), ("softplus", ())]:
    layer = jitbp.layer(kind, *args)
    for dtype in (np.float64, np.float32):
        x = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
        ctx = context(layer, ws=workspaces(layer, x))
        run_backward(layer, x, run_forward(layer, x, ctx), np.ones_like(x), ctx)
    for kernel in (layer.forward_kernel, layer.backward_kernel):
        report[kernel.py_func.__qualname__] = [sum(kernel.stats.cache_hits.values()),
                                               sum(kernel.stats.cache_misses.values())]
print(json.dumps(report))
"""


@pytest.mark.slow
def test_kernels_load_from_the_cache_in_a_second_process():
    """Module-level ``cache=True`` kernels: one compilation per dtype, reused by the next process."""
    import json
    import os
    import pathlib
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pathlib.Path(__file__).parent)] + sys.path))
    for attempt in ("fill", "reuse"):
        done = subprocess.run([sys.executable, "-c", CACHE_PROBE], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
    for name, (hits, misses) in json.loads(done.stdout.splitlines()[-1]).items():
        assert misses == 0 and hits == 2, f"{name}: {misses} compilation(s), {hits} cache hit(s) in a second process"


@pytest.mark.parametrize("name", ["batchnorm", "layernorm", "gelu"])
def test_float32_networks_agree_with_float64(name, regression):
    X, Y = regression
    nets = {}
    for dtype in (np.float64, np.float32):
        # no bias before batchnorm: its gradient is zero up to rounding, which Adam would amplify
        net = jitbp.Sequential(jitbp.layer("dense", 4, 6, bias=False, seed=0), MIDDLE[name](), jitbp.layer("dropout", 0.2),
                               jitbp.layer("dense", 6, 3, seed=1), dtype=dtype)
        net.learn(X, Y, "mse", jitbp.Adam(lr=0.01), epochs=2, batch_size=4, seed=2)
        nets[dtype] = net
    for key, value in nets[np.float64].params.items():
        assert nets[np.float32].params[key].dtype == np.float32, key
        close(nets[np.float32].params[key], value, key, rtol=1e-3)
    for key, value in nets[np.float64].layers[1].state.items():
        assert nets[np.float32].layers[1].state[key].dtype == np.float32, key
        close(nets[np.float32].layers[1].state[key], value, key, rtol=1e-4)
    close(nets[np.float32].predict(X), nets[np.float64].predict(X), "predict", rtol=1e-3)
