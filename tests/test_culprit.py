"""Errors that name the culprit: kernel compile failures and bad shapes name the layer and its plugin."""
import re
import textwrap
import warnings

import numpy as np
import pytest
from numba.core.errors import TypingError

import jitbp
from jitbp import culprit, plugins
from jitbp.capture.cache import CacheWarning
from jitbp.errors import PluginError
from jitbp.layers.activations import relu_backward, relu_forward

KERNELS = '''
from numba import njit
from jitbp import kernels

@njit(cache=True)
def good_forward(xs, params, y, ws):
    y[:] = xs[0] * params[0]

@njit(cache=True)
def typo_forward(xs, params, y, ws):
    y[:] = xs[0] + "not a number"

@njit(cache=True)
def import_forward(xs, params, y, ws):
    import os
    y[:] = xs[0]

@njit(cache=True)
def scale_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    w = params[0]
    if need_dx:
        dxs[0][:] = dy * w
    for i in range(w.size):
        g = 0.0
        for s in range(dy.shape[0]):
            g += dy[s, i] * xs[0][s, i]
        w[i] = kernels.updated(rule, w[i], g, STATES, i, hyper)
'''

PLUGIN = '''
import numpy as np
import jitbp
from jitbp.hookspecs import hookimpl
from {module} import good_forward, import_forward, typo_forward, scale_backward

class Typo(jitbp.Layer):
    kind = "typo"
    forward_kernel, backward_kernel = typo_forward, scale_backward

class Imports(Typo):
    kind = "imports"
    forward_kernel = import_forward

class WrongStates(jitbp.Layer):
    kind = "wrong_states"
    forward_kernel, backward_kernel = good_forward, scale_backward

    def __init__(self, n=3, name=None):
        super().__init__(name=name)
        self.params["w"] = np.linspace(0.5, 1.5, n)

    def config(self):
        return {{"n": self.params["w"].size}}

@hookimpl
def register_layers(register):
    register(Typo)
    register(Imports)
    register(WrongStates)
'''


@pytest.fixture
def bad_plugin(tmp_path, monkeypatch, request):
    """A plugin distribution ``badkernels`` 0.4.2 (entry point in a temporary site directory) with
    layers ``typo`` (a typing error in forward) and ``wrong_states`` (``states`` passed where
    ``states[0]`` was meant); module names unique per test, so Numba's caches do not mix."""
    tag = request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    module = f"badkernels_{tag}"
    (tmp_path / f"{module}.py").write_text(KERNELS.replace("STATES", "states"))
    (tmp_path / f"{module}_plugin.py").write_text(textwrap.dedent(PLUGIN.format(module=module)))
    info = tmp_path / "badkernels-0.4.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badkernels\nVersion: 0.4.2\n")
    (info / "entry_points.txt").write_text(f"[jitbp]\nbadkernels = {module}_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reload()
    try:
        yield module
    finally:
        plugins.reload()


def _learn(kind, steps):
    net = jitbp.Sequential(jitbp.layer("dense", 3, 3, seed=0), jitbp.layer(kind))
    X = np.random.default_rng(0).normal(size=(steps * 2, 3))
    net.learn(X, X.copy(), optimizer=jitbp.SGD(lr=0.1), epochs=1, batch_size=2, shuffle=False)


def _line(text):
    """The line number of ``text`` in the kernel module."""
    return next(k for k, line in enumerate(KERNELS.replace("STATES", "states").splitlines(), 1) if text in line)


def _header(error):
    return str(error).split("Numba's message", 1)[0]


def test_typing_error_in_a_plugin_kernel_names_layer_distribution_and_kernel(bad_plugin):
    with pytest.raises(PluginError) as caught:
        _learn("typo", steps=1)
    text = str(caught.value)
    first = text.splitlines()[0]
    assert first.startswith("layer 'typo' (plugin 'badkernels', distribution badkernels 0.4.2)")
    assert f"forward_kernel {bad_plugin}.typo_forward does not compile (Numba TypingError)" in first
    header = _header(caught.value)
    assert f'line {_line("not a number")}: y[:] = xs[0] + "not a number"' in header
    assert "No implementation of function" in header
    assert "\x1b[" not in text and " at 0x" not in text
    assert len(text.splitlines()) <= 5 + culprit.MAX_NUMBA_LINES + 1
    cause = caught.value.__cause__
    assert isinstance(cause, TypingError) and "\x1b[" not in str(cause)


@pytest.mark.parametrize("capture", ["never", "always"])
def test_states_for_states0_names_the_layer_not_jitbps_kernels(bad_plugin, monkeypatch, capture):
    """Numba fails inside jitbp.kernels.updated; the error must point at the plugin's line that
    called it, in the interpreted engine and in the captured epoch (not the generated module)."""
    monkeypatch.setenv("JITBP_CAPTURE", capture)
    monkeypatch.setenv("JITBP_QUIET", "1")
    with pytest.raises(PluginError) as caught:
        _learn("wrong_states", steps=3)
    header = _header(caught.value)
    assert header.startswith("layer 'wrong_states' (plugin 'badkernels', distribution badkernels 0.4.2): its "
                             f"backward_kernel {bad_plugin}.scale_backward does not compile")
    assert f"line {_line('updated')}: w[i] = kernels.updated(rule, w[i], g, states, i, hyper)" in header
    assert "inside updated" in header, str(caught.value.__cause__)
    assert "Unknown attribute 'dtype' of type UniTuple" in header
    assert "kernels.py" not in header and "jitbp_captured_" not in header


@pytest.mark.parametrize("capture", ["never", "always"])
def test_unsupported_bytecode_names_the_layer_and_leaves_the_cache_alone(bad_plugin, monkeypatch, capture):
    """Numba's UnsupportedBytecodeError is no NumbaError: it too is the layer's, and not a broken cache."""
    monkeypatch.setenv("JITBP_CAPTURE", capture)
    monkeypatch.setenv("JITBP_QUIET", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        with pytest.raises(PluginError) as caught:
            _learn("imports", steps=3)
    header = _header(caught.value)
    assert header.startswith("layer 'imports' (plugin 'badkernels', distribution badkernels 0.4.2): its "
                             f"forward_kernel {bad_plugin}.import_forward does not compile "
                             "(Numba UnsupportedBytecodeError)")
    assert f"line {_line('import os')}: import os" in header and "IMPORT_NAME" in header


# --- shapes a layer returns ----------------------------------------------------------------------


class Shaped(jitbp.Layer):
    kind = "shaped"
    forward_kernel, backward_kernel = relu_forward, relu_backward
    out = (3,)
    work = ()

    def output_shape(self, input_shapes):
        return self.out

    def workspace_shapes(self, batch, input_shapes):
        return self.work


@pytest.mark.parametrize("out", [3, [3.0], (-1,), (3, 0), "3", (True,), None], ids=repr)
def test_bad_output_shape_names_the_layer_and_the_value(out):
    layer = Shaped()
    layer.out = out
    with pytest.raises(PluginError, match=r"layer 'shaped' \(class .*Shaped, not registered by a plugin\): "
                                          r"output_shape\(\[\(3,\)\]\) returned "
                                          + re.escape(repr(out))):
        layer(jitbp.Input(3))


@pytest.mark.parametrize("work", [5, (3,), ((2, -1),), [(2.5,)], ("ab",), None], ids=repr)
def test_bad_workspace_shapes_name_the_layer_and_the_value(work):
    layer = Shaped()
    layer.work = work
    with pytest.raises(PluginError, match=r"layer 'shaped' .*: workspace_shapes\(1, \[\(3,\)\]\) returned "
                                          + re.escape(repr(work))):
        layer(jitbp.Input(3))


def test_lists_and_numpy_ints_are_shapes():
    layer = Shaped()
    layer.out, layer.work = [np.int64(2), 3], [[0], (np.int32(4), 1)]
    assert layer(jitbp.Input(3)).shape == (2, 3)


def test_bad_shape_of_a_registered_layer_names_its_plugin():
    cls = type("Broken", (Shaped,), {"kind": "broken_shape", "out": 4})
    registry = plugins.registry()
    registry.register_plugin(type("Plugin", (), {"register_layers": staticmethod(
        jitbp.hookspecs.hookimpl(lambda register: register(cls)))}), name="broken-shape", version="9.9")
    try:
        with pytest.raises(PluginError, match=r"layer 'broken_shape' \(plugin 'broken-shape' registered at run "
                                              r"time, version 9.9\): output_shape"):
            jitbp.layer("broken_shape")(jitbp.Input(3))
    finally:
        registry.unregister_plugin("broken-shape")
