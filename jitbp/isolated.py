"""Run a function in a fresh Python process, so that a layer crashing it (a segfault,
``os.abort()``) fails one conformance check instead of ending the whole pytest session.

Arguments and results travel pickled through files (NumPy arrays included); an exception
raised in the child is raised again in the parent, and a child killed by a signal, or
exiting without a result, raises ``AssertionError`` naming what ran and the signal.
"""
import os
import pickle
import pkgutil
import signal
import subprocess
import sys
import tempfile
import traceback

#: Characters of the child's stderr quoted in a crash report.
STDERR_TAIL = 2000

_CHILD = "import sys; from jitbp.isolated import _child; _child(sys.argv[1], sys.argv[2])"


def call(function, *args, what, env=None):
    """``function(*args)`` run in a child process; ``function`` names a module-level function
    (``"package.module.name"``). ``what`` says in a failure what ran ("check_cuda of layer
    'conv1d'"); ``env`` adds environment variables for the child."""
    child_env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), **(env or {}))
    with tempfile.TemporaryDirectory(prefix="jitbp-isolated-") as tmp:
        given, result = os.path.join(tmp, "call.pkl"), os.path.join(tmp, "result.pkl")
        with open(given, "wb") as handle:
            pickle.dump((function, args), handle)
        done = subprocess.run([sys.executable, "-c", _CHILD, given, result], capture_output=True, text=True,
                              env=child_env)
        if done.returncode < 0:
            raise AssertionError(f"{what} crashed its process with signal {_signal_name(-done.returncode)}"
                                 f"{_tail(done.stderr)}")
        if not os.path.exists(result):
            raise AssertionError(f"{what}: its process exited with status {done.returncode} without a result"
                                 f"{_tail(done.stderr)}")
        with open(result, "rb") as handle:
            outcome, value, trace = pickle.load(handle)
    if outcome == "returned":
        return value
    value.add_note(f"raised in a child process ({what}):\n{trace}")
    raise value


def isolated(check):
    """``check`` run in a child process by :func:`call`; same name, so ids and xfails still match."""

    def run(case):
        return call(f"{check.__module__}.{check.__qualname__}", case, what=f"{check.__name__} of layer {case.kind!r}")

    run.__name__ = run.__qualname__ = check.__name__
    run.__doc__ = check.__doc__
    run.__wrapped__ = check
    return run


def _signal_name(number):
    try:
        return f"{signal.Signals(number).name} ({number})"
    except ValueError:
        return str(number)


def _tail(stderr):
    text = stderr.strip()
    if not text:
        return ""
    return "; its stderr ends:\n" + (text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:])


def _child(given, result):
    """The child's side: load the call, run it, pickle what it returned or raised."""
    import faulthandler
    import resource

    faulthandler.enable()  # a segfault prints the Python stack on stderr, which the parent quotes
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file behind
    with open(given, "rb") as handle:
        function, args = pickle.load(handle)
    try:
        outcome = ("returned", pkgutil.resolve_name(function)(*args), "")
    except Exception as error:  # SkipTest, AssertionError, and any other error, raised again by the parent
        outcome = ("raised", _picklable(error), traceback.format_exc())
    with open(result, "wb") as handle:
        pickle.dump(outcome, handle)


def _picklable(error):
    """``error``, or a ``RuntimeError`` saying what it was when it cannot be pickled back."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__module__}.{type(error).__qualname__}: {error}")
