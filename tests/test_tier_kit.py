"""The conformance kit on a small layer of each contract-2 tier, and what it catches."""
import numpy as np
import pytest
from numba import njit

import jitbp
from jitbp.layer import FREE
from jitbp.plugins import registry
from jitbp.testing import LayerCase, check_derivatives, check_prediction_mode, check_random_stream, \
    parametrize_with_checks
from tier_layers import Leaky, TierPlugin, leaky_backward


@pytest.fixture(autouse=True)
def tier_plugin():
    reg = registry()
    reg.register_plugin(TierPlugin(), name="tier-layers", version="1.0")
    try:
        yield
    finally:
        reg.unregister_plugin("tier-layers")


CASES = [LayerCase("test_grad_scale", 3, input_shapes=[(3,)]),
         LayerCase("test_counted_scale", 3, input_shapes=[(3,)]),
         LayerCase("test_leaky", 3, slope=0.2, input_shapes=[(3,)]),
         LayerCase("test_mask", 3, p=0.4, input_shapes=[(3,)])]
NOT_INSTALLED = "a test plugin registered at run time has no entry point"
NO_CACHE_CHILD = "the child process does not have the tests directory's modules registered"


@parametrize_with_checks(CASES, expected_failures={
    case.id: {"check_entry_point": NOT_INSTALLED} for case in CASES})
def test_kit_passes_every_tier(case, check):
    check(case)


@njit(cache=True)
def half_written_forward(xs, y, ctx):
    x, yf = xs[0].reshape(-1), y.reshape(-1)
    for i in range(x.size // 2):
        yf[i] = x[i]


@njit(cache=True)
def ws_reading_backward(xs, y, dy, dxs, ctx):
    leaky_backward(xs, y, dy, dxs, ctx)
    dxs[0][0, 0] += ctx.ws[0][0]


@njit(cache=True)
def ws_forward(xs, y, ctx):
    yf, x = y.reshape(-1), xs[0].reshape(-1)
    for i in range(x.size):
        yf[i] = x[i] if x[i] > 0 else ctx.settings[0] * x[i]
    ctx.ws[0][0] = 0.0


@njit(cache=True)
def unkeyed_forward(xs, y, ctx):
    yf, x = y.reshape(-1), xs[0].reshape(-1)
    for i in range(x.size):
        yf[i] = x[i] * np.random.random() if ctx.training else x[i]


class HalfWritten(Leaky):
    kind = "test_half_written"
    forward_kernel = half_written_forward


class ReadsUndefinedWorkspace(Leaky):
    kind = "test_reads_ws"
    forward_kernel, backward_kernel = ws_forward, ws_reading_backward
    kept_workspaces = ()

    def workspace_shapes(self, batch, input_shapes):
        return [(1,)]


class Unkeyed(Leaky):
    kind = "test_unkeyed"
    forward_kernel = unkeyed_forward


@pytest.mark.parametrize("cls, check, words", [
    (HalfWritten, check_derivatives, "layer 'test_half_written': forward_kernel left output elements unwritten"),
    (ReadsUndefinedWorkspace, check_derivatives, "layer 'test_reads_ws': backward_kernel left elements of input "
                                                 "delta 0 unwritten"),
    (Unkeyed, check_random_stream, "layer 'test_unkeyed': the same key and step gave another output"),
])
def test_kit_names_the_layer_and_the_buffer(cls, check, words):
    reg = registry()
    reg.register_plugin(type("P", (), {"register_layers": staticmethod(
        jitbp.hookspecs.hookimpl(lambda register: register(cls)))}), name="bad-tier-layer")
    try:
        with pytest.raises(AssertionError, match=words):
            check(LayerCase(cls.kind, 3, input_shapes=[(3,)]))
    finally:
        reg.unregister_plugin("bad-tier-layer")


def test_kept_workspace_is_not_cleared():
    """The same layer keeping its workspace passes: only undefined ones are NaN."""
    class Keeps(ReadsUndefinedWorkspace):
        kind = "test_keeps_ws"
        kept_workspaces = (0,)

    reg = registry()
    reg.register_plugin(type("P", (), {"register_layers": staticmethod(
        jitbp.hookspecs.hookimpl(lambda register: register(Keeps)))}), name="keeps-ws")
    try:
        check_derivatives(LayerCase("test_keeps_ws", 3, input_shapes=[(3,)]))
        check_prediction_mode(LayerCase("test_keeps_ws", 3, input_shapes=[(3,)]))
    finally:
        reg.unregister_plugin("keeps-ws")
