"""The worked examples of the four reference articles in ../shared/seeds, exactly."""
import numpy as np
import pytest

import jitbp
from conftest import seed_network

X5 = np.arange(5.0)  # seed 000: inputs 0..4, desired outputs y = 2x


def linear(w):
    return jitbp.Sequential(jitbp.layer("dense", 1, 1, bias=False, W=[[w]]))


class TestSeed000LinearExample:
    def test_sum_of_squares_is_30_and_absolute_errors_total_10(self):
        net = linear(3.0)
        assert net.loss(X5, 2 * X5, "sse") == pytest.approx(30.0, abs=1e-12)
        assert net.loss(X5, 2 * X5, "mae") * 5 == pytest.approx(10.0, abs=1e-12)

    def test_nudging_w_to_3_0001_gives_30_006(self):
        assert linear(3.0001).loss(X5, 2 * X5, "sse") == pytest.approx(30.006, abs=1e-6)
        assert linear(2.9999).loss(X5, 2 * X5, "sse") == pytest.approx(29.994, abs=1e-6)

    def test_derivative_is_60(self):
        grads = linear(3.0).gradients(X5, 2 * X5, "sse")
        assert grads["dense_0.W"][0, 0] == pytest.approx(60.0, abs=1e-12)

    def test_delta_rule_full_batch_step(self):
        net = linear(3.0)
        net.learn(X5, 2 * X5, "sse", jitbp.SGD(lr=0.01), epochs=1, batch_size=None)
        assert net.params["dense_0.W"][0, 0] == pytest.approx(3.0 - 0.01 * 60.0, abs=1e-12)

    def test_chain_rule_3x_then_2x(self):
        x = jitbp.Input(1)
        hidden = jitbp.layer("dense", 1, 1, bias=False, W=[[3.0]])
        out = jitbp.layer("dense", 1, 1, bias=False, W=[[2.0]])
        net = jitbp.Network(x, out(hidden(x)))
        change = net.predict([[1.001]]) - net.predict([[1.0]])
        assert change[0, 0] == pytest.approx(0.006, abs=1e-12)
        # d(sse)/dW_hidden = 2 (6x - y) * 2 * x at x=1, y=0: 24
        assert net.gradients([[1.0]], [[0.0]], "sse")["dense_0.W"][0, 0] == pytest.approx(24.0)

    def test_training_converges_to_w_2(self):
        net = linear(3.0)
        history = net.learn(X5, 2 * X5, "sse", jitbp.SGD(lr=0.01), epochs=200, batch_size=1, seed=0)
        assert history[-1] < 1e-12 < history[0]
        assert net.params["dense_0.W"][0, 0] == pytest.approx(2.0, abs=1e-9)


class TestSeed001And003SingleWeight:
    EXPECTED = [0.59, 0.4745, 0.410975, 0.37603625, 0.3568199375]

    def test_weight_sequence(self):
        net = linear(0.8)
        optimizer = jitbp.SGD(lr=0.1)
        seen = []
        for _ in self.EXPECTED:
            net.learn([[1.5]], [[0.5]], "sse", optimizer, epochs=1)
            seen.append(net.params["dense_0.W"][0, 0])
        np.testing.assert_allclose(seen, self.EXPECTED, rtol=0, atol=1e-12)

    def test_same_sequence_from_one_learn_call(self):
        net = linear(0.8)
        net.learn([[1.5]], [[0.5]], "sse", jitbp.SGD(lr=0.1), epochs=5)
        assert net.params["dense_0.W"][0, 0] == pytest.approx(self.EXPECTED[-1], abs=1e-12)

    def test_derivative_is_4_5w_minus_1_5(self):
        for w in (0.8, 0.59, -2.0):
            grad = linear(w).gradients([[1.5]], [[0.5]], "sse")["dense_0.W"][0, 0]
            assert grad == pytest.approx(4.5 * w - 1.5, abs=1e-12)

    def test_converges_to_one_third(self):
        net = linear(0.8)
        net.learn([[1.5]], [[0.5]], "sse", jitbp.SGD(lr=0.1), epochs=100)
        assert net.params["dense_0.W"][0, 0] == pytest.approx(1 / 3, abs=1e-12)
        assert net.predict([[1.5]])[0, 0] == pytest.approx(0.5, abs=1e-12)


class TestSeed002SigmoidNetwork:
    X = [[0.5, -0.5]]
    Y = [[0.9, 0.1]]

    def test_forward_outputs(self):
        out = seed_network().predict(self.X)[0]
        # The article rounds every intermediate to 4 decimals: 0.7164 and 0.5238.
        np.testing.assert_allclose(out, [0.7164, 0.5238], atol=2e-4)
        sig = lambda z: 1 / (1 + np.exp(-z))
        hidden = sig(np.array([0.5 * 0.1 - 0.5 * -0.2 + 0.01, 0.5 * 0.3 - 0.5 * 0.55 - 0.02]))
        exact = sig(np.array([[0.37, 0.9], [-0.22, -0.12]]) @ hidden + [0.31, 0.27])
        np.testing.assert_allclose(out, exact, rtol=0, atol=1e-15)

    def test_one_step_of_lr_1_2_updates_the_worked_weights(self):
        net = seed_network()
        net.learn(self.X, self.Y, "half_sse", jitbp.SGD(lr=1.2), epochs=1)
        assert round(net.params["dense_1.W"][0, 0], 4) == 0.3941
        # The hidden weight's delta must use the output weights before their update;
        # with the updated ones the fourth decimal comes out differently.
        assert round(net.params["dense_0.W"][0, 0], 4) == 0.1055

    def test_hidden_gradient(self):
        grads = seed_network().gradients(self.X, self.Y, "half_sse")
        assert grads["dense_0.W"][0, 0] == pytest.approx(-0.0045954, abs=1e-5)
        assert grads["dense_1.W"][0, 0] == pytest.approx(-0.0201, abs=1e-4)

    def test_fused_step_equals_gradient_step(self):
        net = seed_network()
        before = {k: v.copy() for k, v in net.params.items()}
        grads = net.gradients(self.X, self.Y, "half_sse")
        net.learn(self.X, self.Y, "half_sse", jitbp.SGD(lr=1.2), epochs=1)
        for key, value in net.params.items():
            np.testing.assert_allclose(value, before[key] - 1.2 * grads[key], rtol=0, atol=1e-15)

    def test_training_25_epochs_reduces_error(self):
        X = [[0.5, -0.5], [0.3, 0.4], [0.7, 0.9]]
        Y = [[0.9, 0.1], [0.9, 0.9], [0.1, 0.1]]
        net = seed_network()
        history = net.learn(X, Y, "half_sse", jitbp.SGD(lr=1.2), epochs=25, batch_size=1, shuffle=False)
        assert history[-1] < 0.9 * history[0]


class TestSeed002PerceptronAndXOR:
    def test_threshold_perceptron(self):
        w = [[0, 0, 0.3, 0.3, 0.5, 0.7, 1]]
        x = [[0.31, 0.67, 0.87, 0.8, 0.8, 0.7, 0.9]]
        weighted = jitbp.Sequential(jitbp.layer("dense", 7, 1, bias=False, W=w))
        assert weighted.predict(x)[0, 0] == pytest.approx(2.291, abs=1e-12)
        # "greater than 1 returns 1": a step at 0 after a bias of -1.
        perceptron = jitbp.Sequential(jitbp.layer("dense", 7, 1, W=w, b=[-1.0]), jitbp.layer("step"))
        assert perceptron.predict(x)[0, 0] == 1.0
        assert perceptron.predict([[0.0] * 7])[0, 0] == 0.0

    XOR_X = [[0, 0], [0, 1], [1, 0], [1, 1]]
    XOR_Y = [[0], [1], [1], [0]]

    def test_two_perceptron_layers_compute_xor(self):
        # Hidden: OR and NAND; output: AND of the two.
        hidden = jitbp.layer("dense", 2, 2, W=[[1, 1], [-1, -1]], b=[-0.5, 1.5])
        out = jitbp.layer("dense", 2, 1, W=[[1, 1]], b=[-1.5])
        net = jitbp.Sequential(hidden, jitbp.layer("step"), out, jitbp.layer("step"))
        np.testing.assert_array_equal(net.predict(self.XOR_X), self.XOR_Y)

    def test_single_layer_cannot_learn_xor(self):
        net = jitbp.Sequential(jitbp.layer("dense", 2, 1, seed=0), jitbp.layer("sigmoid"))
        net.learn(self.XOR_X, self.XOR_Y, "mse", jitbp.SGD(lr=0.5), epochs=2000)
        assert np.sum((net.predict(self.XOR_X) > 0.5) == self.XOR_Y) < 4

    def test_hidden_layer_learns_xor(self):
        net = jitbp.Sequential(jitbp.layer("dense", 2, 4, seed=1), jitbp.layer("sigmoid"),
                               jitbp.layer("dense", 4, 1, seed=2), jitbp.layer("sigmoid"))
        history = net.learn(self.XOR_X, self.XOR_Y, "mse", jitbp.SGD(lr=2.0), epochs=3000)
        np.testing.assert_array_equal(net.predict(self.XOR_X) > 0.5, np.array(self.XOR_Y) == 1)
        assert history[-1] < 0.01
