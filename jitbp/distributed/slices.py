"""Which rows each rank trains: its slice of every global batch, in a single process's order."""


def batch_rows(order, n, size):
    """The row indices of each global batch of ``size`` (the last may be partial)."""
    for start in range(0, n, size):
        yield order[start:start + size]


def bounds(count, rank, ranks):
    """``(start, stop)`` of ``rank``'s part of ``count`` rows: near-equal contiguous parts."""
    return count * rank // ranks, count * (rank + 1) // ranks


def my_slice(rows, rank, ranks):
    """``rank``'s part of the global batch ``rows``."""
    start, stop = bounds(len(rows), rank, ranks)
    return rows[start:stop]
