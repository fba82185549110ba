"""Kit ergonomics: case ids with keyword arguments, array arguments for check_cuda, and checks run
in a child process so that a crashing layer fails one check instead of ending the session."""
import textwrap
import unittest

import numpy as np
import pytest

from jitbp import plugins
from jitbp.isolated import call, isolated
from jitbp.testing import (CHECKS, LayerCase, check_backward_forward, check_cuda, check_derivatives,
                           parametrize_with_checks)

CRASHING = '''
import os
import numpy as np
from numba import njit
import jitbp
from jitbp.hookspecs import hookimpl

@njit(cache=True)
def crash_forward(xs, params, y, ws):
    flat = y.reshape(-1)
    flat[1 << 42] = 1.0  # far outside the array: the process dies of SIGSEGV

@njit(cache=True)
def copy_forward(xs, params, y, ws):
    y[:] = xs[0]

@njit(cache=True)
def halved_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    dxs[0][:] = 0.5 * dy  # wrong: the derivative of a copy is dy

class Segfaults(jitbp.Layer):
    kind = "segfaults"
    forward_kernel, backward_kernel = crash_forward, halved_backward

class Aborts(jitbp.Layer):
    kind = "aborts"
    forward_kernel, backward_kernel = copy_forward, halved_backward

    def workspace_shapes(self, batch, input_shapes):
        if batch > 1:  # the graph is built (batch 1); the kit's kernel calls (batch 2) abort
            os.abort()
        return ()

class WrongCopy(jitbp.Layer):
    kind = "wrong_copy"
    forward_kernel, backward_kernel = copy_forward, halved_backward

@hookimpl
def register_layers(register):
    for cls in (Segfaults, Aborts, WrongCopy):
        register(cls)
'''


@pytest.fixture(scope="module")
def crashing_site(tmp_path_factory):
    """Distribution ``crashing`` 0.1 through a real entry point, so child processes find it too."""
    site = tmp_path_factory.mktemp("site")
    (site / "crashing_layers.py").write_text(textwrap.dedent(CRASHING))
    info = site / "crashing-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crashing\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[jitbp]\ncrashing = crashing_layers\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        plugins.reload()
        try:
            yield site
        finally:
            plugins.reload()


# --- ids ------------------------------------------------------------------------------------------


def test_case_ids_name_keyword_arguments():
    assert LayerCase("conv1d", 2, 3, 3, stride=2, seed=0, input_shapes=[(2, 7)]).id == "conv1d(2,3,3,stride=2,seed=0)"
    assert LayerCase("x", "relu", 0.5, (1, 2), None, act="a b", input_shapes=[(2,)]).id == (
        "x(relu,0.5,(1,2),None,act='a_b')")
    assert LayerCase("dense", 4, 3, input_shapes=[(4,)], id="mine").id == "mine"


def test_array_arguments_give_stable_ids_that_tell_values_apart():
    w = np.arange(6.0).reshape(2, 3)
    first = LayerCase("dense", 3, 2, W=w, input_shapes=[(3,)]).id
    assert first == LayerCase("dense", 3, 2, W=w.copy(), input_shapes=[(3,)]).id
    assert first.startswith("dense(3,2,W=array(2x3:") and not any(c.isspace() or c in "[]" for c in first)
    assert first != LayerCase("dense", 3, 2, W=w + 1, input_shapes=[(3,)]).id
    assert first != LayerCase("dense", 3, 2, W=w.astype(np.float32), input_shapes=[(3,)]).id


def test_ids_before_keyword_arguments_still_name_expected_failures():
    case = LayerCase("dense", 4, 3, seed=0, input_shapes=[(4,)])
    mark = parametrize_with_checks([case], expected_failures={"dense(4,3)": {"check_cuda": "no GPU"}})
    params = {p.id: p for p in mark.args[1]}
    (xfail,) = params["dense(4,3,seed=0)-check_cuda"].marks
    assert xfail.kwargs == {"reason": "no GPU", "strict": True}
    twins = [case, LayerCase("dense", 4, 3, seed=1, input_shapes=[(4,)])]
    with pytest.raises(KeyError, match="ambiguous"):
        parametrize_with_checks(twins, expected_failures={"dense(4,3)": {"check_cuda": "no GPU"}})


# --- array arguments reach the CUDA check ---------------------------------------------------------


def test_check_cuda_accepts_array_arguments():
    rng = np.random.default_rng(3)
    case = LayerCase("dense", 3, 2, W=rng.normal(size=(2, 3)), b=rng.normal(size=2), input_shapes=[(3,)])
    check_cuda(case)


# --- isolation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, signal", [("segfaults", "SIGSEGV"), ("aborts", "SIGABRT")])
def test_a_crashing_layer_fails_its_check_naming_layer_and_signal(crashing_site, kind, signal):
    case = LayerCase(kind, input_shapes=[(3,)])
    with pytest.raises(AssertionError, match=rf"check_derivatives of layer '{kind}' crashed its process "
                                             rf"with signal {signal} \(\d+\); its stderr ends:\n.*Fatal Python"):
        isolated(check_derivatives)(case)


def test_isolated_checks_pass_skip_and_fail_as_in_process(crashing_site):
    assert isolated(check_derivatives)(LayerCase("dense", 4, 3, seed=0, input_shapes=[(4,)])) is None
    with pytest.raises(unittest.SkipTest, match="has no backward_forward_kernel"):
        isolated(check_backward_forward)(LayerCase("relu", input_shapes=[(2, 3)]))
    with pytest.raises(AssertionError, match="input delta 0") as caught:
        isolated(check_derivatives)(LayerCase("wrong_copy", input_shapes=[(3,)]))
    assert any("raised in a child process (check_derivatives of layer 'wrong_copy')" in note
               for note in caught.value.__notes__)


def test_isolate_option_wraps_every_check_keeping_its_name():
    case = LayerCase("relu", input_shapes=[(2, 3)], isolate=True)
    mark = parametrize_with_checks([case], expected_failures={"relu()": {"check_cuda": "x"}})
    checks = [p.values[1] for p in mark.args[1]]
    assert [c.__wrapped__ for c in checks] == list(CHECKS)
    assert [c.__name__ for c in checks] == [c.__name__ for c in CHECKS]
    assert not hasattr(parametrize_with_checks([LayerCase("relu", input_shapes=[(2, 3)])]).args[1][0].values[1],
                       "__wrapped__")


def test_a_child_without_a_result_says_so():
    with pytest.raises(AssertionError, match=r"os._exit: its process exited with status 3 without a result"):
        call("os._exit", 3, what="os._exit")
