"""Shared fixtures, and the environment every test runs in.

Set here, before any test imports or compiles anything (subprocesses inherit them):

- ``JITBP_CACHE_DIR``: a temporary directory for the session, so tests never read or
  write the user's cache of captured epochs. The process that makes it (pytest itself,
  or pytest-xdist's controller) removes it at the end; xdist's workers and the tests'
  subprocesses inherit it through ``JITBP_TEST_CACHE``, so they share what is compiled;
- ``JITBP_CAPTURE=never`` unless already set: compiling a captured epoch takes up to a
  minute per new graph, so tests train on the interpreted tape. tests/test_capture.py
  proves the captured epoch gives the same results, and the tests that need it set
  ``JITBP_CAPTURE=always`` themselves.
"""
import os
import shutil
import tempfile

import numpy as np
import pytest

_OWNS_CACHE = "JITBP_TEST_CACHE" not in os.environ
if _OWNS_CACHE:
    os.environ["JITBP_TEST_CACHE"] = tempfile.mkdtemp(prefix="jitbp-test-cache-")
os.environ["JITBP_CACHE_DIR"] = os.environ["JITBP_TEST_CACHE"]
os.environ.setdefault("JITBP_CAPTURE", "never")

import jitbp  # noqa: E402  (after the environment above)


def pytest_unconfigure(config):
    if _OWNS_CACHE:
        shutil.rmtree(os.environ["JITBP_TEST_CACHE"], ignore_errors=True)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def seed_network():
    """The 2-2-2 sigmoid network of seed article 002."""
    hidden = jitbp.layer("dense", 2, 2, W=[[0.1, -0.2], [0.3, 0.55]], b=[0.01, -0.02])
    output = jitbp.layer("dense", 2, 2, W=[[0.37, 0.9], [-0.22, -0.12]], b=[0.31, 0.27])
    return jitbp.Sequential(hidden, jitbp.layer("sigmoid"), output, jitbp.layer("sigmoid"))
