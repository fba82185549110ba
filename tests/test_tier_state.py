"""Layer state buffers: saved in model files, rolled back with the parameters, never optimized."""
import numpy as np
import pytest

import jitbp
from jitbp.errors import DivergenceError, ModelFileError, ShapeError
from jitbp.plugins import registry
from tier_layers import CountedScale, TierPlugin


@pytest.fixture
def tier_plugin():
    reg = registry()
    reg.register_plugin(TierPlugin(), name="tier-layers", version="1.0")
    try:
        yield
    finally:
        reg.unregister_plugin("tier-layers")


def data(n=10, seed=0):
    r = np.random.default_rng(seed)
    return r.normal(size=(n, 3)), r.normal(size=(n, 2))


def counted_mlp():
    scale = CountedScale(4)
    net = jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=0), scale, jitbp.layer("dense", 4, 2, seed=1))
    return net, scale


def test_state_is_saved_and_loaded(tmp_path, tier_plugin):
    X, Y = data()
    net, scale = counted_mlp()
    net.learn(X, Y, "mse", jitbp.Adam(lr=0.01, weight_decay=0.5), epochs=3, batch_size=4, seed=0)
    assert scale.state["count"][0] == 9  # 3 batches x 3 epochs; weight decay never touched it
    net.save(tmp_path / "m")
    loaded = jitbp.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.states["test_counted_scale_0.count"], [9.0])
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_state_shapes_are_checked_before_the_layer_is_built(tmp_path, tier_plugin, monkeypatch):
    net, _ = counted_mlp()
    net.save(tmp_path / "m")
    built = []
    monkeypatch.setattr(CountedScale, "state_shapes", classmethod(lambda cls, width: {"count": (2,)}))
    monkeypatch.setattr(CountedScale, "__init__", lambda *a, **k: built.append(1))
    with pytest.raises(ModelFileError, match=r"state buffers \{'count': \(2,\)\} by its config, but the file"):
        jitbp.load(tmp_path / "m")
    assert built == []


def test_divergence_rolls_the_state_back_with_the_parameters():
    X, Y = data(n=8)
    net, scale = counted_mlp()
    with pytest.raises(DivergenceError) as info:
        net.learn(X, Y * 1e200, "mse", jitbp.SGD(lr=10.0), epochs=50, batch_size=2, seed=0)
    restored = info.value.restored_epoch
    assert restored is not None
    assert scale.state["count"][0] == restored * 4  # 4 batches an epoch up to the checkpoint


def test_a_replaced_state_array_is_refused_before_any_kernel():
    X, Y = data()
    net, scale = counted_mlp()
    scale.state["count"] = np.zeros(1, np.float32)
    with pytest.raises(TypeError, match="state buffer test_counted_scale_0.count is a float32 array"):
        net.learn(X, Y)
    scale.state["count"] = np.zeros(2)
    with pytest.raises(ShapeError, match="state buffer test_counted_scale_0.count has shape"):
        net.predict(X)
    scale.state["count"] = np.zeros(1)
    scale.state["count"].flags.writeable = False
    with pytest.raises(ValueError, match="state buffer test_counted_scale_0.count is a read-only array"):
        net.learn(X, Y)
