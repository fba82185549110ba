"""CUDA kernels of the layers that join branches: ``jitbp.cuda.merge.add`` and
``jitbp.cuda.merge.concat``. One launch per input (the inputs are a tuple of any length)."""
from types import SimpleNamespace

from .api import cuda
from .launch import add as add_into, copy, grid, rows


@cuda.jit
def _columns(src, src_start, dst, dst_start, width):
    i = cuda.grid(1)
    if i >= src.shape[0] * width:
        return
    s = i // width
    j = i - s * width
    dst[s, dst_start + j] = src[s, src_start + j]


def _add_forward(xs, params, y, ws):
    copy(xs[0], y)
    for x in xs[1:]:
        add_into(x, y)


def _add_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    for dx in dxs:
        copy(dy, dx)


def _concat_forward(xs, params, y, ws):
    out, start = rows(y), 0
    for x in xs:
        part = rows(x)
        width = part.shape[1]
        _columns[grid(part.size)](part, 0, out, start, width)
        start += width


def _concat_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    delta, start = rows(dy), 0
    for dx in dxs:
        part = rows(dx)
        width = part.shape[1]
        _columns[grid(part.size)](delta, start, part, 0, width)
        start += width


add = SimpleNamespace(forward=_add_forward, backward=_add_backward)
concat = SimpleNamespace(forward=_concat_forward, backward=_concat_backward)
