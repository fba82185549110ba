"""The conformance kit (jitbp.testing) on every built-in layer and, when installed, the conv plugin."""
import numpy as np
import pytest
from numba import njit

import jitbp
from jitbp import kernels
from jitbp.testing import (CHECKS, LayerCase, builtin_cases, check_cached, check_compiled_once, check_cuda,
                           check_derivatives, parametrize_with_checks)

CONV_CASES = [
    LayerCase("conv1d", 2, 3, 3, stride=2, padding=1, seed=0, input_shapes=[(2, 7)], id="conv1d(2,3,3,s2,p1)"),
    LayerCase("conv1d", 1, 2, 4, bias=False, seed=1, input_shapes=[(1, 6)], id="conv1d(1,2,4,bias=False)"),
    LayerCase("maxpool1d", 2, input_shapes=[(2, 7)]),
    LayerCase("maxpool1d", 3, stride=1, input_shapes=[(2, 6)], id="maxpool1d(3,s1)"),
    LayerCase("avgpool1d", 3, stride=2, input_shapes=[(2, 7)], id="avgpool1d(3,s2)"),
    LayerCase("flatten", input_shapes=[(2, 3)]),
]
CASES = builtin_cases() + (CONV_CASES if "conv1d" in jitbp.available_layers() else [])


#: Checks that start a second process or train many configurations. What they prove is a
#: property of a kernel module (module-level ``cache=True`` kernels loaded from the cache,
#: no recompiling per batch size or optimizer), so they run on one case per module; the
#: CUDA twins of every layer are compared with the CPU kernels in tests/cuda.
MODULE_CHECKS = (check_compiled_once, check_cached, check_cuda)
LAYER_CHECKS = tuple(check for check in CHECKS if check not in MODULE_CHECKS)


def one_case_per_module(cases):
    first = {}
    for case in cases:
        first.setdefault(type(case.make()).forward_kernel.py_func.__module__, case)
    return list(first.values())


@parametrize_with_checks(CASES, checks=LAYER_CHECKS, expected_failures={"batchnorm(4)": {
    "check_batch_of_one": "one value per channel has no batch statistics: batchnorm refuses to train on it, as torch"}})
def test_layer_conforms(case, check):
    check(case)


@parametrize_with_checks(one_case_per_module(CASES), checks=MODULE_CHECKS)
def test_kernel_module_conforms(case, check):
    check(case)


def test_every_registered_layer_has_a_case():
    assert {case.kind for case in CASES} == set(jitbp.available_layers())


# A layer with a wrong derivative (the forward doubles, the backward does not) that the kit must catch.

@njit(cache=True)
def double_forward(xs, params, y, ws):
    y[:] = 2.0 * xs[0]


@njit(cache=True)
def double_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    dxs[0][:] = dy


class WrongDouble(jitbp.Layer):
    kind = "wrong_double"
    forward_kernel, backward_kernel = double_forward, double_backward


@pytest.fixture
def wrong_double():
    registry = jitbp.plugins.registry()
    registry.register_plugin(type("Plugin", (), {"register_layers": staticmethod(
        jitbp.hookspecs.hookimpl(lambda register: register(WrongDouble)))}), name="wrong-double")
    try:
        yield LayerCase("wrong_double", input_shapes=[(3,)])
    finally:
        registry.unregister_plugin("wrong-double")


def test_kit_catches_a_wrong_derivative(wrong_double):
    with pytest.raises(AssertionError, match="input delta 0"):
        check_derivatives(wrong_double)


def test_expected_failures_become_strict_xfails():
    case = builtin_cases()[0]
    mark = parametrize_with_checks([case], expected_failures={case.id: {"check_cuda": "no GPU twin"}})
    params = {p.id: p for p in mark.args[1]}
    assert len(params) == len(CHECKS)
    (xfail,) = params[f"{case.id}-check_cuda"].marks
    assert xfail.kwargs == {"reason": "no GPU twin", "strict": True}
    assert not params[f"{case.id}-check_derivatives"].marks


@pytest.mark.parametrize("expected", [{"nope": {"check_cuda": "x"}}, {"dense(4,3,seed=0)": {"check_nope": "x"}}])
def test_expected_failures_must_name_real_cases_and_checks(expected):
    with pytest.raises(KeyError):
        parametrize_with_checks(builtin_cases(), expected_failures=expected)
