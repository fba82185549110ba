"""device="cuda" beyond the numbers: where parameters live, errors, model files, CPU installs."""
import os
import subprocess
import sys

import numpy as np
import pytest

import jitbp
from jitbp.layers.activations import identity_backward, identity_forward
from cuda_helpers import assert_close, assert_same_params, needs_cuda, twins

pytestmark = needs_cuda


def mlp(device):
    return jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=1), jitbp.layer("tanh"),
                            jitbp.layer("dense", 4, 2, seed=2), device=device)


@pytest.fixture
def data():
    rng = np.random.default_rng(5)
    return rng.normal(size=(4, 3)), rng.normal(size=(4, 2))


class NoTwin(jitbp.Layer):
    """A CPU-only layer: CPU kernels, no cuda_kernels."""

    kind = "no_twin"
    forward_kernel, backward_kernel = identity_forward, identity_backward


def test_layer_without_cuda_kernels_is_named():
    x = jitbp.Input(3)
    h = jitbp.layer("dense", 3, 3, seed=0)(x)
    with pytest.raises(ValueError, match=r"no_twin_0 \(no_twin\).*no CUDA kernels"):
        jitbp.Network(x, NoTwin(name=None)(h), device="cuda")
    jitbp.Network(x, NoTwin()(h), device="cpu")  # fine on the CPU


def test_unimportable_cuda_kernels_are_reported_by_layer():
    class Broken(NoTwin):
        kind = "broken_twin"
        cuda_kernels = "jitbp.cuda.no_such_module"

    x = jitbp.Input(3)
    with pytest.raises(jitbp.PluginError, match="broken_twin.*jitbp.cuda.no_such_module"):
        jitbp.Network(x, Broken(name="broken")(x), device="cuda")


def test_unknown_device():
    with pytest.raises(ValueError, match="unknown device 'tpu'.*cpu, cuda"):
        mlp("tpu")


def test_optimizer_state_carries_across_learn_calls(data):
    cpu, gpu = twins(mlp)
    opt_cpu, opt_gpu = jitbp.Adam(lr=0.05), jitbp.Adam(lr=0.05)
    for net, opt in ((cpu, opt_cpu), (gpu, opt_gpu)):
        net.learn(*data, optimizer=opt, epochs=2, batch_size=3, shuffle=False)
        net.learn(*data, optimizer=opt, epochs=2, batch_size=3, shuffle=False)
    assert_same_params(cpu, gpu)
    for key in cpu.params:
        (slots_cpu, step_cpu), (slots_gpu, step_gpu) = opt_cpu.state_of(cpu.params[key]), opt_gpu.state_of(gpu.params[key])
        assert step_gpu == step_cpu == 8
        assert np.any(slots_gpu != 0.0)
        assert_close(slots_gpu, slots_cpu, what=f"Adam state of {key}")


def test_host_params_are_the_truth_outside_learn(data):
    cpu, gpu = twins(mlp)
    for net in (cpu, gpu):
        net.params["dense_0.W"][0, 0] = 3.0  # an in-place edit between calls is honoured
        net.learn(*data, optimizer=jitbp.SGD(lr=0.1), epochs=1)
    assert_same_params(cpu, gpu)
    gpu.params["dense_1.b"][:] = 0.5
    cpu.params["dense_1.b"][:] = 0.5
    assert_close(gpu.predict(data[0]), cpu.predict(data[0]), what="predict after an edit")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the simulator's scalars
def test_divergence_leaves_the_parameters_before_the_failing_batch(data):
    X, Y = data
    Y = Y * 1e200
    cpu, gpu = twins(mlp)
    for net in (cpu, gpu):
        with pytest.raises(jitbp.DivergenceError):
            net.learn(X, Y, loss="sse", optimizer=jitbp.SGD(lr=10.0), epochs=3, batch_size=1, shuffle=False)
    assert_same_params(cpu, gpu, tol=0.0)
    assert all(np.all(np.isfinite(p)) for p in gpu.params.values())


def test_bad_input_raises_before_any_kernel(data):
    X, Y = data
    gpu = mlp("cuda")
    before = {key: value.copy() for key, value in gpu.params.items()}
    bad = X.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gpu.learn(bad, Y, optimizer=jitbp.SGD(lr=0.1))
    with pytest.raises(ValueError):
        gpu.predict(X[:, :2])
    for key, value in before.items():
        np.testing.assert_array_equal(gpu.params[key], value)


def test_save_and_load_across_devices(data, tmp_path):
    X, Y = data
    gpu = mlp("cuda")
    opt = jitbp.RMSprop(lr=0.01)
    gpu.learn(X, Y, optimizer=opt, epochs=2)
    path = tmp_path / "model.jitbp"
    gpu.save(path, optimizer=opt)
    loaded = jitbp.load(path)
    assert_same_params(gpu, loaded, tol=0.0)
    assert_close(loaded.predict(X), gpu.predict(X), what="predict of the loaded model")
    on_gpu = jitbp.Network(loaded.inputs, loaded.output, device="cuda")
    assert_close(on_gpu.predict(X), gpu.predict(X), what="predict of the loaded model on cuda")
    saved = loaded.saved_optimizer
    for key in gpu.params:
        assert_close(saved.state_of(loaded.params[key])[0], opt.state_of(gpu.params[key])[0],
                     tol=0.0, what=f"saved optimizer state of {key}")


def test_cpu_networks_never_import_numba_cuda():
    code = ("import sys, numpy as np, jitbp\n"
            "net = jitbp.Sequential(jitbp.layer('dense', 2, 2, seed=0), jitbp.layer('sigmoid'))\n"
            "X = np.ones((3, 2)); net.learn(X, X, epochs=1); net.predict(X); net.gradients(X, X)\n"
            "loaded = [m for m in sys.modules if m.startswith(('numba.cuda', 'numba_cuda', 'jitbp.cuda'))]\n"
            "print(loaded); raise SystemExit(1 if loaded else 0)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"a CPU run imported CUDA modules: {done.stdout}{done.stderr}"
