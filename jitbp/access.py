"""One network, many threads: ``predict``, ``loss`` and ``gradients`` run side by side,
``learn`` runs alone."""
import threading
from contextlib import contextmanager


class Access:
    """Shared use by any number of threads at once, or exclusive use by one; each waits for
    the other. A waiting exclusive user goes before new shared ones, so a stream of
    predictions cannot starve ``learn``. The thread that holds it exclusively may also
    use it shared or exclusively again (``learn`` evaluating its own network)."""

    def __init__(self):
        self._changed = threading.Condition()
        self._readers = 0
        self._writer = None  # the ident of the thread holding it exclusively
        self._depth = 0
        self._waiting_writers = 0

    @contextmanager
    def shared(self):
        me = threading.get_ident()
        with self._changed:
            owner = self._writer == me
            if not owner:
                self._changed.wait_for(lambda: self._writer is None and not self._waiting_writers)
                self._readers += 1
        try:
            yield
        finally:
            if not owner:
                with self._changed:
                    self._readers -= 1
                    self._changed.notify_all()

    @contextmanager
    def exclusive(self):
        me = threading.get_ident()
        with self._changed:
            if self._writer != me:
                self._waiting_writers += 1
                try:
                    self._changed.wait_for(lambda: self._writer is None and not self._readers)
                finally:
                    self._waiting_writers -= 1
                self._writer = me
            self._depth += 1
        try:
            yield
        finally:
            with self._changed:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                    self._changed.notify_all()
