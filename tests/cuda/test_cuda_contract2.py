"""The CUDA twins of the contract-2 layers equal their CPU kernels (float64, 1e-12): forward,
input deltas, gradients and state buffers, in training and in prediction. Kernels are
called directly with a Context on each side. Run with NUMBA_ENABLE_CUDASIM=1."""
import pkgutil

import numpy as np
import pytest

import jitbp
from jitbp.context import Context
from jitbp.cuda.api import cuda
from jitbp.layer import FREE
from cuda_helpers import assert_close, needs_cuda

#: The simulator runs the counter RNG's uint64 arithmetic in NumPy scalars, which warn
#: on the wrap-around the hash relies on (a GPU and the CPU kernels wrap silently).
pytestmark = [needs_cuda, pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning")]

TOL = 1e-12
LAYERS = {
    "leaky_relu": ("leaky_relu", (0.2,), {}, (2, 3)),
    "elu": ("elu", (0.7,), {}, (2, 3)),
    "gelu": ("gelu", (), {}, (2, 3)),
    "gelu_tanh": ("gelu", (), {"approximate": "tanh"}, (2, 3)),
    "silu": ("silu", (), {}, (2, 3)),
    "softplus": ("softplus", (2.0, 1.5), {}, (2, 3)),
    "dropout": ("dropout", (0.4,), {}, (2, 3)),
    "dropout_p0": ("dropout", (0.0,), {}, (4,)),
    "batchnorm_dense": ("batchnorm", (3,), {"momentum": 0.2}, (3,)),
    "batchnorm_conv1d": ("batchnorm", (2,), {}, (2, 3)),
    "layernorm": ("layernorm", (3,), {}, (2, 3)),
    "layernorm_plain": ("layernorm", (3,), {"elementwise_affine": False}, (3,)),
}


def build(name):
    kind, args, kwargs, sample = LAYERS[name]
    layer = jitbp.layer(kind, *args, **kwargs)
    rng = np.random.default_rng(3)
    for value in layer.params.values():
        value[...] = rng.uniform(0.5, 1.5, value.shape)
    return layer, sample


def run(layer, x, dy, training, device):
    """``{what: host array}`` after forward and backward on the CPU or the device."""
    to = cuda.to_device if device else (lambda a: a)
    host = (lambda a: a.copy_to_host()) if device else np.asarray
    settings = np.array(list(layer.settings().values()), np.float64)
    state = tuple(to(s.copy()) for s in layer.state.values())
    ws = tuple(to(np.full(s, np.nan)) for s in layer.workspace_shapes(x.shape[0], [x.shape[1:]]))
    ctx = Context(training, to(settings), state, ws, np.uint64(99), np.int64(2 if training else 0))
    params = tuple(to(p.copy()) for p in layer.params.values())
    xs, y, dxs = (to(x),), to(np.full_like(x, np.nan)), (to(np.full_like(x, np.nan)),)
    grads = tuple(to(np.full_like(p, np.nan)) for p in layer.params.values())
    kernels = pkgutil.resolve_name(layer.cuda_kernels) if device else None
    forward = kernels.forward if device else layer.forward_kernel
    backward = kernels.backward if device else layer.backward_kernel
    if layer.tier == FREE:
        forward(xs, y, ctx)
        backward(xs, y, to(dy), dxs, ctx)
    else:
        forward(xs, params, y, ctx)
        backward(xs, y, to(dy), dxs, True, params, grads, ctx)
    out = {"forward": host(y), "input delta": host(dxs[0])}
    out.update({f"gradient {k}": host(g) for k, g in zip(layer.params, grads)})
    out.update({f"state {k}": host(s) for k, s in zip(layer.state, state)})
    return out


@pytest.mark.parametrize("training", [True, False], ids=["training", "prediction"])
@pytest.mark.parametrize("name", LAYERS)
def test_twin_equals_cpu(name, training):
    layer, sample = build(name)
    rng = np.random.default_rng(4)
    x = rng.normal(scale=2.0, size=(3,) + sample)
    dy = rng.normal(size=x.shape)
    cpu, gpu = run(layer, x, dy, training, False), run(layer, x, dy, training, True)
    assert cpu.keys() == gpu.keys()
    for what in cpu:
        assert np.all(np.isfinite(cpu[what])), f"{what}: the CPU kernel left elements unwritten"
        assert_close(gpu[what], cpu[what], TOL, what)
    if name == "dropout" and training:
        assert 0 < np.count_nonzero(cpu["forward"] == 0.0) < x.size, "the mask should drop some elements"


def test_batchnorm_twin_refuses_one_value_per_channel():
    layer, _ = build("batchnorm_dense")
    with pytest.raises(ValueError, match="more than one value per channel"):
        run(layer, np.ones((1, 3)), np.ones((1, 3)), True, True)


# -- through learn on device="cuda": the CUDA engine's tiers, state and random keys ---------------

MIDDLE = {
    "batchnorm": lambda: jitbp.layer("batchnorm", 4, momentum=0.3),
    "layernorm": lambda: jitbp.layer("layernorm", 4),
    "dropout": lambda: jitbp.layer("dropout", 0.4),
    "gelu": lambda: jitbp.layer("gelu", approximate="tanh"),
    "softplus": lambda: jitbp.layer("softplus", 2.0),
}


def mlp(name):
    def build(device):
        return jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=1), MIDDLE[name](), jitbp.layer("tanh"),
                                jitbp.layer("dense", 4, 2, seed=2), device=device)
    return build


@pytest.mark.parametrize("name", MIDDLE)
def test_training_on_cuda_equals_cpu(name):
    from cuda_helpers import train_both

    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    cpu, gpu = train_both(mlp(name), X, Y, optimizer=lambda: jitbp.Adam(lr=0.05), batch_size=3, seed=11)
    for layer_cpu, layer_gpu in zip(cpu.layers, gpu.layers):
        for key in layer_cpu.state:
            assert_close(layer_gpu.state[key], layer_cpu.state[key], 1e-9, f"{layer_cpu.kind} state {key}")
    assert_close(gpu.predict(X), cpu.predict(X), 1e-9, "eval-mode predictions")
    grads_cpu, grads_gpu = cpu.gradients(X, Y), gpu.gradients(X, Y)
    for key in grads_cpu:
        assert_close(grads_gpu[key], grads_cpu[key], 1e-9, f"gradient {key}")
