"""The captured tape: one compiled function per graph that runs a whole epoch.

The interpreted engine pays Python and dispatch overhead on every layer call of
every step. Once a graph is known, the tape it records is always the same, so it
is written out as Python source (:mod:`.codegen`, from the fixed parts in
:mod:`.templates`), saved to a file named by its hash and compiled with
``cache=True`` (:mod:`.cache`): the next process with the same graph loads the
machine code from Numba's cache. :mod:`.runtime` packs the engine's buffers into
the compiled function's arguments;
:mod:`.background` compiles an epoch missing from the cache in another process
while training goes on interpreted. The interpreted engine stays the reference;
tests check both agree.
"""
import os

from .cache import CACHE_ENV, cache_usage, clear_cache, source_fingerprint
from .runtime import CapturedEpoch

#: ``JITBP_CAPTURE``: "auto" (default) captures learn() calls of at least
#: CAPTURE_MIN_STEPS steps, compiling a new epoch in the background while they train
#: interpreted; "always" captures every one, compiling first (the old behaviour: tests
#: rely on it); "never" none (debugging).
CAPTURE_ENV = "JITBP_CAPTURE"
CAPTURE_MIN_STEPS = 64

__all__ = ["CACHE_ENV", "CAPTURE_ENV", "CAPTURE_MIN_STEPS", "CapturedEpoch", "cache_usage", "capture_mode",
           "clear_cache", "source_fingerprint"]


def capture_mode():
    mode = os.environ.get(CAPTURE_ENV, "auto")
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"{CAPTURE_ENV} must be auto, always or never, got {mode!r}")
    return mode
