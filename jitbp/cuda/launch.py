"""Launch geometry and the small array kernels the engine and the layers share."""
from .api import cuda

#: Threads per block of element-wise kernels; a launch over fewer elements uses one
#: block of just that many threads (the simulator runs one Python thread per thread).
THREADS = 128


def grid(n):
    """``(blocks, threads)`` covering ``n`` threads."""
    threads = max(1, min(THREADS, n))
    return (n + threads - 1) // threads, threads


def flat(array):
    """A 1-D view of a contiguous device array."""
    return array.reshape(array.size)


def rows(array):
    """A ``(batch, features)`` view of a contiguous device array."""
    return array.reshape(array.shape[0], array.size // array.shape[0])


@cuda.jit
def _copy(src, dst):
    i = cuda.grid(1)
    if i < dst.size:
        dst[i] = src[i]


@cuda.jit
def _add(src, dst):
    i = cuda.grid(1)
    if i < dst.size:
        dst[i] += src[i]


@cuda.jit
def _scale(dst, factor):
    i = cuda.grid(1)
    if i < dst.size:
        dst[i] *= factor


@cuda.jit
def _gather_rows(src, order, start, dst):
    i = cuda.grid(1)
    width = dst.shape[1]
    if i < dst.size:
        r = i // width
        j = i - r * width
        dst[r, j] = src[order[start + r], j]


def copy(src, dst):
    """``dst[...] = src`` for device arrays of one size."""
    src, dst = flat(src), flat(dst)
    _copy[grid(dst.size)](src, dst)


def add(src, dst):
    """``dst += src`` for device arrays of one size."""
    src, dst = flat(src), flat(dst)
    _add[grid(dst.size)](src, dst)


def scale(dst, factor):
    """``dst *= factor`` for a device array."""
    dst = flat(dst)
    _scale[grid(dst.size)](dst, dst.dtype.type(factor))


def gather_rows(src, order, start, dst):
    """``dst[r] = src[order[start + r]]`` for every row ``r`` of ``dst`` (device arrays)."""
    src, dst = rows(src), rows(dst)
    _gather_rows[grid(dst.size)](src, order, start, dst)
