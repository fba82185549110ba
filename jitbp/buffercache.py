"""Buffers per batch size, kept per thread so that concurrent calls on one network never share them."""
import threading


class BufferCache:
    """``get(batch)``: this thread's buffers for ``batch`` samples, made once by ``make(batch)``.

    Each thread keeps at most ``limit`` batch sizes, least recently used evicted
    first; a thread's buffers go when the thread ends.
    """

    def __init__(self, make, limit):
        self._make = make
        self._limit = limit
        self._local = threading.local()

    def _cached(self):
        cached = getattr(self._local, "by_batch", None)
        if cached is None:
            cached = self._local.by_batch = {}
        return cached

    def sizes(self):
        """The batch sizes this thread holds buffers for."""
        return set(self._cached())

    def get(self, batch):
        cached = self._cached()
        bufs = cached.pop(batch, None)
        if bufs is None:
            if len(cached) >= self._limit:
                cached.pop(next(iter(cached)))
            bufs = self._make(batch)
        cached[batch] = bufs
        return bufs
