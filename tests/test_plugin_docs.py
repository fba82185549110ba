"""Each complete example of docs/plugins.md (a ``<!-- example: NAME -->`` block) is a working plugin:
written out as module NAME, registered, trained, and checked by the kit."""
import pathlib
import re
import sys

import numpy as np
import pytest

import jitbp
from jitbp.plugins import registry
from jitbp.testing import LayerCase, check_config, check_derivatives, check_prediction_mode, check_shared

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
EXAMPLES = dict(re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", DOC.read_text(), re.S))
CASES = {"jitbp_scale": LayerCase("scale", 3, seed=0, input_shapes=[(3,)]),
         "jitbp_leaky": LayerCase("my_leaky_relu", slope=0.2, input_shapes=[(3,)]),
         "jitbp_gradient_scale": LayerCase("gradient_scale", 3, seed=0, input_shapes=[(3,)])}


def test_every_tier_has_an_example():
    assert set(EXAMPLES) == set(CASES)


@pytest.fixture
def example(request, tmp_path, monkeypatch):
    """The example module written to disk (Numba caches only kernels defined in files), registered."""
    name = request.param
    (tmp_path / f"{name}.py").write_text(EXAMPLES[name])
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    reg = registry()
    reg.register_plugin(module, name=name)
    try:
        yield CASES[name]
    finally:
        reg.unregister_plugin(name)
        # tests/test_plugins.py installs the docs' first example under this name too: a
        # worker running both must import that file, not this one, from sys.modules
        sys.modules.pop(name, None)


@pytest.mark.parametrize("example", sorted(CASES), indirect=True)
def test_example_trains_and_passes_the_kit(example):
    case = example
    net = jitbp.Sequential(jitbp.layer("dense", 3, 3, seed=0), case.make(), jitbp.layer("dense", 3, 1, seed=1))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    Y = X @ np.array([[1.0], [-2.0], [0.5]])
    history = net.learn(X, Y, "mse", jitbp.Adam(lr=0.02), epochs=30, batch_size=16, seed=0)
    assert history[-1] < 0.5 * history[0]
    for check in (check_derivatives, check_shared, check_prediction_mode, check_config):
        check(case)
