"""Activation kernels against NumPy in float64, including the vectorized float32 sigmoid."""
import numpy as np
import pytest

import jitbp


def run(kind, x, dtype):
    net = jitbp.Network(inp := jitbp.Input(x.shape[1]), jitbp.layer(kind)(inp), dtype=dtype)
    return net.predict(x)


REFERENCE = {
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "identity": lambda x: x,
    "step": lambda x: (x >= 0).astype(float),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", list(REFERENCE))
def test_activation_values(kind, dtype):
    x = np.linspace(-80, 80, 4001).reshape(-1, 1).astype(dtype)
    expected = REFERENCE[kind](x.astype(np.float64))
    tolerance = 4e-7 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(run(kind, x, dtype), expected, rtol=tolerance, atol=1e-30)


def test_float32_sigmoid_saturates_and_keeps_nan():
    """The kernel itself (predict refuses NaN input before any kernel runs)."""
    from jitbp.layers.activations import sigmoid_forward

    x = np.array([[np.nan], [np.inf], [-np.inf], [200.0], [-200.0], [0.0]], dtype=np.float32)
    out = np.empty_like(x)
    sigmoid_forward((x,), (), out, (np.empty_like(x),))
    assert np.isnan(out[0, 0])
    np.testing.assert_array_equal(out[1:, 0] >= 0, True)
    assert out[1, 0] == 1.0 and out[3, 0] == 1.0 and out[5, 0] == 0.5
    assert out[2, 0] < 1e-37 and out[4, 0] < 1e-37
