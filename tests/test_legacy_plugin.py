"""The compatibility promise: a plugin written against contract 1 passes the whole kit unchanged."""
import pathlib

import pytest

from jitbp.plugins import registry
from jitbp.testing import LayerCase, parametrize_with_checks

LEGACY = pathlib.Path(__file__).parent / "legacy_plugin"


@pytest.fixture(autouse=True)
def legacy_scale(monkeypatch):
    """The plugin importable (also by the kit's child processes) and registered for the test.

    Its module has a name of its own: tests/test_plugins.py installs the current docs'
    example as ``jitbp_scale``, and one worker process may run both."""
    monkeypatch.syspath_prepend(str(LEGACY))
    import jitbp_legacy_scale

    reg = registry()
    reg.register_plugin(jitbp_legacy_scale, name="scale", version="0.1.0")
    try:
        yield
    finally:
        reg.unregister_plugin("scale")


CASES = [LayerCase("scale", 3, seed=0, input_shapes=[(3,)])]


@parametrize_with_checks(CASES, expected_failures={
    "scale(3)": {"check_entry_point": "registered at run time, not installed with an entry point"}})
def test_contract1_plugin_passes_the_kit(case, check):
    check(case)
