"""Plugin discovery and isolation: real entry points from a temporary dist-info directory."""
import pathlib
import sys
import textwrap
import unittest

import numpy as np
import pytest

import jitbp
from jitbp import cli, plugins

#: Broken plugins are meant to warn here; the tests that check the warning catch it themselves.
pytestmark = pytest.mark.filterwarnings("ignore::jitbp.plugins.PluginWarning")

GOOD = '''
from numba import njit
import jitbp
from jitbp.hookspecs import hookimpl

@njit(cache=True)
def twice_forward(xs, params, y, ws):
    y[:] = 2.0 * xs[0]

@njit(cache=True)
def twice_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    dxs[0][:] = 2.0 * dy

class Twice(jitbp.Layer):
    kind = "twice"
    description = "y = 2 x"
    forward_kernel, backward_kernel = twice_forward, twice_backward

@hookimpl
def register_layers(register):
    register(Twice)
'''

BROKEN = {
    "broken_import": ("import no_such_module_anywhere\n", "import failed", "no_such_module_anywhere"),
    "not_a_layer": ("from jitbp.hookspecs import hookimpl\n"
                    "@hookimpl\ndef register_layers(register):\n    register(object)\n",
                    "register() takes a jitbp.Layer subclass", None),
    "no_kernels": ("import jitbp\nfrom jitbp.hookspecs import hookimpl\n"
                   "class Plain(jitbp.Layer):\n    kind = 'plain'\n"
                   "    forward_kernel = backward_kernel = staticmethod(lambda *a: None)\n"
                   "@hookimpl\ndef register_layers(register):\n    register(Plain)\n",
                   "forward_kernel must be a Numba-jitted function", "plain"),
    "duplicate": ("from jitbp.hookspecs import hookimpl\nfrom jitbp.layers.dense import Dense\n"
                  "class Again(Dense):\n    pass\n"
                  "@hookimpl\ndef register_layers(register):\n    register(Again)\n",
                  "layer 'dense' is already registered by 'jitbp.layers.dense'", None),
}


def install(site, name, source, version="1.2.3", entry=None):
    """A module ``name`` plus a dist-info directory naming it in the ``jitbp`` entry-point group
    (as plugin ``entry``, by default ``name``)."""
    (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[jitbp]\n{entry or name} = {name}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site directory on sys.path; the registry is rebuilt before and after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    plugins.reload()
    try:
        yield tmp_path
    finally:
        plugins.reload()
        for name, module in list(sys.modules.items()):  # a later test may reuse a module name
            if str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
                del sys.modules[name]


@pytest.fixture
def broken_site(site):
    install(site, "good_plugin", GOOD)
    for name, (source, _, _) in BROKEN.items():
        install(site, name, source)
    return site


def test_good_plugin_is_found_through_its_entry_point_and_trains(site):
    install(site, "good_plugin", GOOD)
    info = jitbp.available_layers()["twice"]
    assert (info["plugin"], info["version"], info["cuda"]) == ("good_plugin", "1.2.3", False)
    net = jitbp.Sequential(jitbp.layer("dense", 2, 1, seed=0), jitbp.layer("twice"))
    X, Y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[1.0], [-1.0]])
    history = net.learn(X, Y, optimizer=jitbp.SGD(lr=0.05), epochs=20)
    assert history[-1] < history[0]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_plugin_is_reported_by_name_and_the_rest_load(broken_site, name):
    _, reason, missing_layer = BROKEN[name]
    registry = plugins.registry()
    assert reason in registry.plugins[name].error
    assert "twice" in registry.layers and "dense" in registry.layers
    assert registry.layers["dense"].plugin == "jitbp.layers.dense"
    if missing_layer:
        assert missing_layer not in registry.layers


def test_cli_lists_failures_by_name(broken_site, capsys):
    assert cli.main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "good_plugin 1.2.3: twice" in out
    for name, (_, reason, _) in BROKEN.items():
        line = next(line for line in out.splitlines() if line.startswith(f"{name} "))
        assert "FAILED" in line and reason in line
    assert cli.main(["plugins", "--strict"]) == 1


def test_cli_layers_shows_plugin_and_version(site, capsys):
    install(site, "good_plugin", GOOD)
    cli.main(["layers"])
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("twice "))
    assert "good_plugin 1.2.3" in line and "y = 2 x" in line


def test_plugin_disabled_by_environment(broken_site, monkeypatch):
    monkeypatch.setenv(plugins.DISABLE_ENV, "good_plugin, broken_import")
    plugins.reload()
    registry = plugins.registry()
    assert registry.plugins["good_plugin"].disabled and registry.plugins["broken_import"].disabled
    assert "twice" not in registry.layers and not registry.plugins["broken_import"].error
    with pytest.raises(KeyError, match="unknown layer 'twice'"):
        jitbp.layer("twice")


def test_plugin_disabled_by_cli_flag(site, monkeypatch, capsys):
    install(site, "good_plugin", GOOD)
    monkeypatch.setenv(plugins.DISABLE_ENV, "")
    assert cli.main(["--disable", "good_plugin", "plugins"]) == 0
    assert "good_plugin 1.2.3: disabled" in capsys.readouterr().out
    assert "twice" not in jitbp.available_layers()


def test_register_plugin_at_run_time_reports_contract_breaks():
    class Bad:
        @jitbp.hookspecs.hookimpl
        def register_layers(self, register):
            register(int)

    registry = plugins.registry()
    try:
        info = registry.register_plugin(Bad(), name="bad-runtime")
        assert "register() takes a jitbp.Layer subclass" in info.error
    finally:
        registry.unregister_plugin("bad-runtime")
    assert "bad-runtime" not in registry.plugins


def test_conv_plugin_comes_only_from_its_entry_point():
    pytest.importorskip("jitbp_conv")
    info = plugins.registry().plugins["conv"]
    assert set(info.layers) == {"conv1d", "maxpool1d", "avgpool1d", "flatten"} and not info.error
    assert not any(name.startswith("jitbp_conv") for name in plugins.DEFAULT_PLUGINS)
    package = pathlib.Path(plugins.__file__).parent
    assert not [path for path in package.rglob("*.py") if "jitbp_conv" in path.read_text()]


def test_plugin_without_the_hook_is_reported(site):
    install(site, "typo_plugin", "from jitbp.hookspecs import hookimpl\n"
                                 "@hookimpl\ndef register_layer(register):\n    pass\n")
    install(site, "good_plugin", GOOD)
    registry = plugins.registry()
    assert "register_layers" in registry.plugins["typo_plugin"].error
    assert "twice" in registry.layers


def test_the_docs_example_plugin_passes_the_kit(site):
    """docs/plugins.md's plugin, installed through a real entry point, passes every check."""
    from jitbp.testing import CHECKS, LayerCase, check_backward_forward, check_cuda

    doc = (pathlib.Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    source = doc.split("```python\n", 1)[1].split("```", 1)[0]
    install(site, "jitbp_scale", source)
    case = LayerCase("scale", 3, seed=0, input_shapes=[(3,)])
    for check in CHECKS:
        if check is check_cuda:
            with pytest.raises(unittest.SkipTest, match="'scale' has no CUDA kernels"):
                check(case)
        elif check is check_backward_forward:  # a skip here would skip the checks after it
            with pytest.raises(unittest.SkipTest, match="'scale' has no backward_forward_kernel"):
                check(case)
        else:
            check(case)
    assert jitbp.available_layers()["scale"]["plugin"] == "jitbp_scale"


# --- failures are contained and reported -------------------------------------------

THRICE = GOOD.replace("Twice", "Thrice").replace("twice", "thrice").replace("2.0", "3.0")


@pytest.mark.parametrize("source", [
    "import sys\nsys.exit(3)\n",
    "import sys\nfrom jitbp.hookspecs import hookimpl\n@hookimpl\ndef register_layers(register):\n    sys.exit(3)\n",
], ids=["at-import", "in-hook"])
def test_plugin_calling_sys_exit_is_a_failure_not_an_exit(site, source):
    install(site, "exits", source)
    install(site, "good_plugin", GOOD)
    assert jitbp.layer("twice").kind == "twice"
    assert "SystemExit: 3" in plugins.registry().plugins["exits"].error


def test_keyboard_interrupt_in_a_plugin_still_interrupts(site):
    install(site, "interrupts", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        plugins.registry()


def test_second_distribution_with_a_taken_plugin_name_is_reported(site):
    install(site, "dist_a", GOOD, entry="same")
    install(site, "dist_b", THRICE, entry="same")
    registry = plugins.registry()
    winner = registry.plugins["same"].distribution
    loser = ({"dist_a", "dist_b"} - {winner}).pop()
    report = registry.plugins[f"same ({loser})"]
    assert f"plugin name 'same' is already taken by distribution {winner}" in report.error
    assert len({"twice", "thrice"} & set(registry.layers)) == 1


def test_broken_plugin_named_like_a_built_in_module_is_reported(site):
    install(site, "impostor", "import no_such_module_anywhere\n", entry="jitbp.layers.dense")
    registry = plugins.registry()
    report = registry.plugins["jitbp.layers.dense (impostor)"]
    assert "already taken by distribution jitbp" in report.error
    assert registry.plugins["jitbp.layers.dense"].layers == ("dense",) and not registry.plugins["jitbp.layers.dense"].error


def test_failed_plugin_warns_once_naming_distribution_and_error_type(broken_site):
    with pytest.warns(plugins.PluginWarning) as caught:
        jitbp.layer("twice")
        jitbp.layer("twice")
        jitbp.available_layers()
    messages = [str(w.message) for w in caught]
    assert len(messages) == len(BROKEN)
    broken = next(m for m in messages if "'broken_import'" in m)
    assert "distribution broken_import 1.2.3" in broken and "ModuleNotFoundError" in broken
    assert "no_such_module_anywhere" in broken


def test_unknown_layer_error_names_the_plugins_that_failed(broken_site):
    with pytest.raises(KeyError, match="unknown layer 'plain'") as info:
        jitbp.layer("plain")
    message = str(info.value)
    assert "'no_kernels' (distribution no_kernels 1.2.3)" in message and "forward_kernel must be" in message
    assert "'broken_import'" in message


def test_disabling_a_name_no_plugin_has_warns(site, monkeypatch):
    install(site, "good_plugin", GOOD)
    monkeypatch.setenv(plugins.DISABLE_ENV, "good_plugin, good_plugn")
    with pytest.warns(plugins.PluginWarning, match="'good_plugn', which match no installed plugin"):
        registry = plugins.registry()
    assert registry.plugins["good_plugin"].disabled


def test_cli_disable_of_an_unknown_name_says_so(site, monkeypatch, capsys):
    install(site, "good_plugin", GOOD)
    monkeypatch.setenv(plugins.DISABLE_ENV, "")
    assert cli.main(["--disable", "good_plugn", "layers"]) == 0
    assert "jitbp: warning: JITBP_DISABLE_PLUGINS names 'good_plugn'" in capsys.readouterr().err
    assert cli.main(["--disable", "good_plugn", "plugins"]) == 0
    assert "good_plugn: asked to be disabled, but no installed plugin has this name" in capsys.readouterr().out
