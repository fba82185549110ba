"""init= on dense and conv1d: bounds and variances from the published formulas (torch.nn.init as oracle)."""
import math

import numpy as np
import pytest

import jitbp
from jitbp.init import INITS, scale

SHAPES = {"dense": (300, 200), "conv1d": (40, 30, 5)}  # (out, in) and (out, in, kernel)


def make(kind, init, seed=0):
    if kind == "dense":
        return jitbp.layer("dense", 200, 300, init=init, seed=seed)
    pytest.importorskip("jitbp_conv", reason="conv1d comes from the jitbp-conv plugin")
    return jitbp.layer("conv1d", 30, 40, 5, init=init, seed=seed)


def torch_oracle(init, shape):
    """(uniform bound or std, a torch sample) from torch.nn.init's own formulas."""
    torch = pytest.importorskip("torch", reason="torch.nn.init is the oracle for the init formulas")
    t = torch.empty(shape, dtype=torch.float64)
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(t)
    gain = torch.nn.init.calculate_gain("relu")
    if init == "he_uniform":
        torch.nn.init.kaiming_uniform_(t, nonlinearity="relu")
        return gain * math.sqrt(3.0 / fan_in), t.numpy()
    if init == "he_normal":
        torch.nn.init.kaiming_normal_(t, nonlinearity="relu")
        return gain / math.sqrt(fan_in), t.numpy()
    if init == "glorot_uniform":
        torch.nn.init.xavier_uniform_(t)
        return math.sqrt(6.0 / (fan_in + fan_out)), t.numpy()
    if init == "glorot_normal":
        torch.nn.init.xavier_normal_(t)
        return math.sqrt(2.0 / (fan_in + fan_out)), t.numpy()
    # nn.Linear / nn.Conv1d's default: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in))
    torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5))
    return 1.0 / math.sqrt(fan_in), t.numpy()


@pytest.mark.parametrize("kind", ["dense", "conv1d"])
@pytest.mark.parametrize("init", INITS)
def test_distribution_matches_the_formula(kind, init):
    layer = make(kind, init)
    W = layer.params["W"]
    shape = SHAPES[kind]
    expected, torch_sample = torch_oracle(init, shape)
    fan_in = int(np.prod(shape[1:]))
    fan_out = shape[0] * int(np.prod(shape[2:]))
    assert scale(init, fan_in, fan_out) == pytest.approx(expected)
    assert W.shape == shape and abs(W.mean()) < 0.05 * W.std()
    if init.endswith("normal"):
        assert W.std() == pytest.approx(expected, rel=0.03)
        assert W.std() == pytest.approx(torch_sample.std(), rel=0.05)
    else:
        assert np.abs(W).max() <= expected and np.abs(W).max() > 0.99 * expected
        assert W.std() == pytest.approx(expected / math.sqrt(3.0), rel=0.03)
        assert W.std() == pytest.approx(torch_sample.std(), rel=0.05)
    b = layer.params["b"]
    if init == "uniform":
        assert np.abs(b).max() <= 1.0 / math.sqrt(fan_in) and b.std() > 0
    else:
        assert not b.any()


@pytest.mark.parametrize("kind", ["dense", "conv1d"])
def test_seed_fixes_the_weights_and_uniform_is_unchanged(kind):
    a, b = make(kind, "he_normal", seed=3), make(kind, "he_normal", seed=3)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], make(kind, "he_normal", seed=4).params["W"])
    default = (jitbp.layer("dense", 200, 300, seed=3) if kind == "dense"
               else jitbp.layer("conv1d", 30, 40, 5, seed=3))
    np.testing.assert_array_equal(default.params["W"], make(kind, "uniform", seed=3).params["W"])
    assert "init" not in default.config() and a.config()["init"] == "he_normal"


def test_unknown_init_and_model_file_round_trip(tmp_path):
    with pytest.raises(jitbp.UnknownNameError, match="glorot_uniform"):
        jitbp.layer("dense", 2, 2, init="xavier")
    net = jitbp.Sequential(jitbp.layer("dense", 3, 4, init="glorot_uniform", seed=0), jitbp.layer("relu"))
    net.save(tmp_path / "m.jitbp")
    back = jitbp.load(tmp_path / "m.jitbp")
    np.testing.assert_array_equal(back.params["dense_0.W"], net.params["dense_0.W"])
    assert back.layers[0].init == "glorot_uniform"
