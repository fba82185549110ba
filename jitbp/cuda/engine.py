"""``CudaEngine``: the tape engine of :mod:`jitbp.engine` with every kernel on the device.

Parameters live on the device. Outside ``learn`` the host arrays (``net.params``) are
the truth: :meth:`CudaEngine.forward` uploads them first. During ``learn`` they stay
on the device with the optimizer's state and the activations; the training data is
uploaded once per ``learn``, the shuffled order once per epoch, the hyper-parameters
once per batch, and the loss comes back as one scalar per batch. Parameters and
optimizer state are copied back into the host arrays at the end of every epoch, so
``net.params`` is current when ``learn`` returns or raises.
"""
import math

import numpy as np

from ..buffercache import BufferCache
from ..unwind import backward_plan
from .api import cuda, require_device
from .launch import add, gather_rows, scale
from .losses import loss_value
from .resolve import device_kernels
from .updates import DeviceUpdates, HostUpdates


class DeviceBuffers:
    """Activations, deltas, workspaces and loss scratch on the device for one batch size."""

    def __init__(self, net, plan, batch):
        dtype = net.dtype
        self.batch = batch
        empty = cuda.device_array
        self.values = [empty((batch,) + node.shape, dtype) for node in net.calls]
        self.deltas = [empty((batch,) + node.shape, dtype) for node in net.calls]
        self.workspaces = [
            tuple(empty(shape, dtype) for shape in
                  node.layer.workspace_shapes(batch, [inp.shape for inp in node.inputs]))
            for node in net.calls
        ]
        self.inputs = [empty((batch,) + node.shape, dtype) for node in net.inputs]
        self.scratch = [[empty((batch,) + inp.shape, dtype) if target is None else None
                         for inp, target in zip(node.inputs, step.delta_of)]
                        for node, step in zip(net.calls, plan)]
        self.partials = empty(batch, np.float64)
        self.loss_out = empty(1, np.float64)
        self._targets = {}

    def target(self, dtype, shape):
        """A device buffer for ``batch`` targets of ``dtype`` and per-sample ``shape``."""
        key = (np.dtype(dtype), tuple(shape))
        if key not in self._targets:
            self._targets[key] = cuda.device_array((self.batch,) + tuple(shape), dtype)
        return self._targets[key]


class CudaEngine:
    """Runs a network's calls on the layers' CUDA kernels (same interface as ``Engine``)."""

    MAX_CACHED_BATCHES = 4

    def __init__(self, net):
        self.net = net
        self._kernels = device_kernels(net)
        require_device()
        self._plan = backward_plan(net)
        self._params = {id(layer): tuple(cuda.to_device(p) for p in layer.params.values())
                        for layer in net.layers}
        self._buffers = BufferCache(lambda batch: DeviceBuffers(net, self._plan, batch), self.MAX_CACHED_BATCHES)

    # -- parameters -----------------------------------------------------------------
    def device_params(self, layer):
        """The device copies of ``layer``'s parameters, in ``layer.params`` order."""
        return self._params[id(layer)]

    def push_params(self):
        """Upload every layer's host parameters (the truth outside ``learn``)."""
        for layer in self.net.layers:
            for host, device in zip(layer.params.values(), self._params[id(layer)]):
                device.copy_to_device(host)

    def pull_params(self, layer=None):
        """Copy the device parameters (of ``layer``, or of all layers) into the host arrays."""
        for layer in self.net.layers if layer is None else (layer,):
            for host, device in zip(layer.params.values(), self._params[id(layer)]):
                device.copy_to_host(host)

    # -- the CPU engine's interface ---------------------------------------------------
    def buffers(self, batch):
        """This thread's device buffers for ``batch`` samples."""
        return self._buffers.get(batch)

    def optimizer_updates(self, optimizer):
        """The updater for one ``learn``: uploads the parameters, keeps them on the device."""
        self.push_params()
        return DeviceUpdates(self, optimizer)

    def train_epoch(self, inputs, target, order, size, loss, updates, capture=False, interrupt=None):
        """One epoch on the device; see :meth:`jitbp.engine.Engine.train_epoch`.

        ``capture`` (the CPU engine's compiled-epoch switch) does not apply here.
        """
        if updates.data is None or updates.data[0] is not target:
            updates.data = (target, [cuda.to_device(x) for x in inputs], cuda.to_device(target))
        _, xs_all, t_all = updates.data
        device_order = None if order is None else cuda.to_device(order)
        n = len(target)
        total = 0.0
        try:
            for k, start in enumerate(range(0, n, size)):
                if interrupt is not None and interrupt.pending:
                    return total, k, None
                stop = min(start + size, n)
                bufs = self.buffers(stop - start)
                if device_order is None:
                    xs, t = [x[start:stop] for x in xs_all], t_all[start:stop]
                else:
                    xs, t = bufs.inputs, bufs.target(target.dtype, target.shape[1:])
                    for x, buf in zip(xs_all, xs):
                        gather_rows(x, device_order, start, buf)
                    gather_rows(t_all.reshape(n, t_all.size // n), device_order, start,
                                t.reshape(t.shape[0], t.size // t.shape[0]))
                tape = []
                value = loss_value(loss, self._forward(bufs, xs, tape), t, bufs.deltas[-1],
                                   bufs.partials, bufs.loss_out)
                if not math.isfinite(value):
                    return total, k, value
                self._backward(bufs, tape, updates)
                total += value * (stop - start) / n if loss.mean else value
            return total, None, None
        finally:
            updates.pull()

    def to_host(self, array):
        """``array`` copied into a new NumPy array."""
        return array.copy_to_host()

    def forward(self, bufs, inputs, tape=None):
        """Upload the host parameters and ``inputs``, then run every call on the device."""
        self.push_params()
        for x, buf in zip(inputs, bufs.inputs):
            buf.copy_to_device(np.ascontiguousarray(x))
        return self._forward(bufs, bufs.inputs, tape)

    def loss(self, bufs, output, target, loss):
        """The loss of the device ``output`` against host ``target``; writes the output delta."""
        target = np.ascontiguousarray(target)
        device_target = bufs.target(target.dtype, target.shape[1:])
        device_target.copy_to_device(target)
        return loss_value(loss, output, device_target, bufs.deltas[-1], bufs.partials, bufs.loss_out)

    def scale_output_delta(self, bufs, factor):
        """Multiply dL/d(output), as :meth:`loss` wrote it, by ``factor``."""
        scale(bufs.deltas[-1], factor)

    def backward(self, bufs, tape, updates):
        """Unwind ``tape`` with a host updater (``Network.gradients``), state copied per call."""
        self._backward(bufs, tape, HostUpdates(self, updates))

    # -- device passes ----------------------------------------------------------------
    def _forward(self, bufs, inputs, tape):
        net = self.net
        values = {id(node): data for node, data in zip(net.inputs, inputs)}
        for i, node in enumerate(net.calls):
            xs = tuple(values[id(inp)] for inp in node.inputs)
            y = bufs.values[i]
            self._kernels[id(node.layer)][0](xs, self._params[id(node.layer)], y, bufs.workspaces[i])
            values[id(node)] = y
            if tape is not None:
                tape.append((i, xs, y))
        return bufs.values[-1]

    def _backward(self, bufs, tape, updates):
        updates.begin()
        while tape:
            i, xs, y = tape.pop()
            node = self.net.calls[i]
            step = self._plan[i]
            dxs = tuple(bufs.scratch[i][slot] if target is None else bufs.deltas[target]
                        for slot, target in enumerate(step.delta_of))
            rule, hyper, states = updates.before(node)
            self._kernels[id(node.layer)][1](xs, y, bufs.deltas[i], dxs, step.need_dx,
                                              self._params[id(node.layer)], rule, hyper, states,
                                              bufs.workspaces[i])
            for slot, target in step.fan_in:
                add(bufs.scratch[i][slot], bufs.deltas[target])
            updates.after(node)
