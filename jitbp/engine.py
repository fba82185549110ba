"""The tape engine: forward pass pushes each layer call, backward pops and unwinds it.

Weight updates are fused into the layers' derivative kernels. An *updater* tells
the engine which rule each call applies: the optimizer's (training), or
``ACCUMULATE`` into gradient arrays (``gradients()`` and shared parameters).
"""
import math

import numpy as np

from . import kernels
from .buffercache import BufferCache
from .capture import CapturedEpoch, capture_mode
from .unwind import backward_plan


class Buffers:
    """Activations, deltas and workspaces for one batch size, allocated once and reused."""

    def __init__(self, net, batch):
        dtype = net.dtype
        self.batch = batch
        self.values = [np.empty((batch,) + node.shape, dtype) for node in net.calls]
        self.deltas = [np.empty((batch,) + node.shape, dtype) for node in net.calls]
        self.workspaces = [
            tuple(np.empty(shape, dtype) for shape in
                  node.layer.workspace_shapes(batch, [inp.shape for inp in node.inputs]))
            for node in net.calls
        ]
        self._scratch = {}
        #: Packed views of these buffers kept by other runners (the captured epoch).
        self.extra = {}

    def scratch(self, call, slot, shape, dtype):
        """A private delta buffer for input ``slot`` of call ``call``."""
        key = (call, slot)
        if key not in self._scratch:
            self._scratch[key] = np.empty((self.batch,) + shape, dtype)
        return self._scratch[key]


class OptimizerUpdates:
    """Fused optimizer updates; shared layers accumulate and update at their last unwind."""

    def __init__(self, net, optimizer):
        self.net = net
        self.optimizer = optimizer
        self._grads = {id(layer): [np.zeros_like(p) for p in layer.params.values()]
                       for layer in net.shared_layers}
        self._pending = set()

    def shared_grads(self):
        """Gradient arrays of the shared layers, in ``net.shared_layers`` order."""
        return [self._grads[id(layer)] for layer in self.net.shared_layers]

    def before(self, node):
        layer = node.layer
        params = tuple(layer.params.values())
        if not params:
            return kernels.ACCUMULATE, kernels.NO_HYPER, ()
        grads = self._grads.get(id(layer))
        if grads is None:
            hyper, states = self.optimizer.prepare(params)
            return self.optimizer.rule, hyper, states
        if id(layer) not in self._pending:
            self._pending.add(id(layer))
            for grad in grads:
                grad[...] = 0.0
        return kernels.ACCUMULATE, kernels.NO_HYPER, tuple(g.reshape(1, -1) for g in grads)

    def after(self, node):
        layer = node.layer
        if id(layer) not in self._pending or self.net.first_call_of(layer) is not node:
            return
        self._pending.discard(id(layer))
        params = tuple(layer.params.values())
        hyper, states = self.optimizer.prepare(params)
        for param, grad, state in zip(params, self._grads[id(layer)], states):
            kernels.apply_gradient(self.optimizer.rule, param, grad, state, hyper)


class GradientCollector:
    """Adds every parameter's gradient into ``grads`` and changes no parameter."""

    def __init__(self, net):
        self.grads = {id(layer): [np.zeros_like(p) for p in layer.params.values()] for layer in net.layers}

    def before(self, node):
        grads = self.grads[id(node.layer)]
        return kernels.ACCUMULATE, kernels.NO_HYPER, tuple(g.reshape(1, -1) for g in grads)

    def after(self, node):
        pass


class Engine:
    """Runs a network's calls on Numba kernels with buffers cached per batch size and thread."""

    MAX_CACHED_BATCHES = 4

    def __init__(self, net):
        self.net = net
        self.plan = backward_plan(net)
        self._buffers = BufferCache(lambda batch: Buffers(net, batch), self.MAX_CACHED_BATCHES)
        self._captured = {}

    def buffers(self, batch):
        """This thread's buffers for ``batch`` samples, least recently used evicted first."""
        return self._buffers.get(batch)

    def optimizer_updates(self, optimizer):
        """The updater that applies ``optimizer`` inside the backward kernels."""
        return OptimizerUpdates(self.net, optimizer)

    def train_epoch(self, inputs, target, order, size, loss, updates, capture=False, interrupt=None):
        """One epoch of steps on batches of ``size`` (rows ``order``, or in sequence).

        Returns ``(epoch_loss, None, None)``, or ``(partial, batch_index, value)`` when
        a batch's loss is not finite: that batch is left unapplied, or ``(partial,
        batch_index, None)`` when ``interrupt.pending`` was set before that batch
        (:mod:`jitbp.interrupts`). With ``capture`` the epoch runs as one compiled
        function (:mod:`jitbp.capture`) when it can; under ``JITBP_CAPTURE=auto`` one
        that is not compiled yet is compiled in the background meanwhile.
        """
        if capture:
            captured = self.captured(loss)
            result = captured and captured.run(self, inputs, target, order, size, updates.optimizer,
                                               updates.shared_grads(), wait=capture_mode() != "auto")
            if result is not None:
                return result
        n = len(target)
        total = 0.0
        for k, start in enumerate(range(0, n, size)):
            if interrupt is not None and interrupt.pending:
                return total, k, None
            stop = min(start + size, n)
            if order is None:
                xs, t = [x[start:stop] for x in inputs], target[start:stop]
            else:
                rows = order[start:stop]
                xs, t = [x[rows] for x in inputs], target[rows]
            bufs = self.buffers(stop - start)
            tape = []
            value = self.loss(bufs, self.forward(bufs, xs, tape), t, loss)
            if not math.isfinite(value):
                return total, k, value
            self.backward(bufs, tape, updates)
            total += value * (stop - start) / n if loss.mean else value
        return total, None, None

    def captured(self, loss):
        """The compiled epoch for ``loss`` on this graph, built once; ``None`` if a kernel
        cannot be imported by name."""
        if loss.name not in self._captured:
            self._captured[loss.name] = CapturedEpoch.build(self.net, loss)
        return self._captured[loss.name]

    def to_host(self, array):
        """``array`` as a NumPy array (the CPU engine's arrays already are)."""
        return array

    def forward(self, bufs, inputs, tape=None):
        """Run every call; push ``(call, xs, y)`` on ``tape`` when given. Returns the output."""
        net = self.net
        values = {id(node): data for node, data in zip(net.inputs, inputs)}
        for i, node in enumerate(net.calls):
            xs = tuple(values[id(inp)] for inp in node.inputs)
            y = bufs.values[i]
            node.layer.forward_kernel(xs, tuple(node.layer.params.values()), y, bufs.workspaces[i])
            values[id(node)] = y
            if tape is not None:
                tape.append((i, xs, y))
        return bufs.values[-1]

    def loss(self, bufs, output, target, loss):
        """The loss value; writes dL/d(output) into the output's delta buffer."""
        n = output.shape[0]
        flat_target = target if loss.labels else target.reshape(n, -1)
        return float(loss.kernel(output.reshape(n, -1), flat_target, bufs.deltas[-1].reshape(n, -1)))

    def scale_output_delta(self, bufs, factor):
        """Multiply dL/d(output), as :meth:`loss` wrote it, by ``factor``."""
        bufs.deltas[-1] *= factor

    def backward(self, bufs, tape, updates):
        """Pop the tape, sending each call its output delta and summing fan-out deltas."""
        net = self.net
        while tape:
            i, xs, y = tape.pop()
            node = net.calls[i]
            step = self.plan[i]
            dxs = tuple(bufs.scratch(i, slot, inp.shape, net.dtype) if target is None else bufs.deltas[target]
                        for slot, (inp, target) in enumerate(zip(node.inputs, step.delta_of)))
            rule, hyper, states = updates.before(node)
            node.layer.backward_kernel(xs, y, bufs.deltas[i], dxs, step.need_dx,
                                       tuple(node.layer.params.values()), rule, hyper, states,
                                       bufs.workspaces[i])
            for slot, target in step.fan_in:
                bufs.deltas[target] += dxs[slot]
            updates.after(node)
