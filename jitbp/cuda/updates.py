"""Updaters for the device backward pass (the CPU engine's protocol: ``before(node)``
returns ``(rule, hyper, states)``, ``after(node)`` follows the kernel)."""
import numpy as np

from .. import kernels
from ..engine import call_seeds, steps_taken
from .api import cuda
from .rules import apply_gradient


class DeviceUpdates:
    """Fused optimizer updates with parameters and state on the device, for one ``learn``.

    Per batch, :meth:`begin` advances the optimizer's steps and uploads one table of
    hyper-parameters. Shared layers accumulate into device gradient buffers and apply
    the rule at their last unwind (the earliest call). :meth:`pull` copies parameters
    and optimizer state back into the host arrays.
    """

    def __init__(self, engine, optimizer, seed=0):
        if not optimizer.fused:
            raise ValueError(f"{type(optimizer).__name__} is a plugin's rule: device='cuda' runs the built-in "
                             f"rules only (SGD, Adam, AdamW, RMSprop, Adagrad); train it on device='cpu'")
        self.engine = engine
        self.optimizer = optimizer
        net = engine.net
        #: Random keys of the calls in this run, and the training steps taken so far.
        self.seeds = call_seeds(net, seed)
        self.steps_done = steps_taken(net, optimizer)
        self.trained = [layer for layer in net.layers if layer.params]
        self._row = {id(layer): k for k, layer in enumerate(self.trained)}
        self._shared = {id(layer): [cuda.to_device(np.zeros_like(p)) for p in layer.params.values()]
                        for layer in net.shared_layers}
        self._no_hyper = cuda.to_device(np.zeros(1))
        self._hyper = None
        self._hyper_rows = []
        self._states = {}
        self._layer_states = {}
        #: ``(host target, device inputs, device target)``: the engine's upload of this
        #: ``learn``'s data, made once.
        self.data = None

    def _device_state(self, host):
        entry = self._states.get(id(host))
        if entry is None or entry[0] is not host:
            entry = self._states[id(host)] = (host, cuda.to_device(host))
        return entry[1]

    def begin(self):
        """Advance every parameter's step and upload this batch's hyper-parameters."""
        hypers = []
        for layer in self.trained:
            hyper, states = self.optimizer.prepare(tuple(layer.params.values()))
            hypers.append(hyper)
            self._layer_states[id(layer)] = tuple(self._device_state(s) for s in states)
        if not hypers:
            return
        table = np.zeros((len(hypers), max(len(h) for h in hypers)))
        for row, hyper in zip(table, hypers):
            row[:len(hyper)] = hyper
        if self._hyper is None or self._hyper.shape != table.shape:
            self._hyper = cuda.to_device(table)
            self._hyper_rows = [self._hyper[k] for k in range(len(table))]
        else:
            self._hyper.copy_to_device(table)

    def before(self, node):
        layer = node.layer
        k = self._row.get(id(layer))
        if k is None:
            return kernels.ACCUMULATE, self._no_hyper, ()
        grads = self._shared.get(id(layer))
        if grads is None:
            return self.optimizer.rule, self._hyper_rows[k], self._layer_states[id(layer)]
        return kernels.ACCUMULATE, self._hyper_rows[k], tuple(g.reshape(1, g.size) for g in grads)

    def after(self, node):
        layer = node.layer
        grads = self._shared.get(id(layer))
        if grads is None or self.engine.net.first_call_of(layer) is not node:
            return
        hyper = self._hyper_rows[self._row[id(layer)]]
        for param, grad, state in zip(self.engine.device_params(layer), grads,
                                      self._layer_states[id(layer)]):
            apply_gradient(self.optimizer.rule, param, grad, state, hyper)

    def pull(self):
        """Copy the device parameters and optimizer state into their host arrays."""
        self.engine.pull_params()
        for host, device in self._states.values():
            device.copy_to_host(host)


class HostUpdates:
    """Runs a host updater (e.g. ``GradientCollector``) around device kernels.

    Its state arrays are copied to the device before each call and back after it, as
    are the layer's parameters when the rule changes them: the slow, exact path used
    by ``Network.gradients``.
    """

    def __init__(self, engine, updates):
        self.engine = engine
        self.updates = updates
        self._pending = None

    def begin(self):
        pass

    def before(self, node):
        rule, hyper, states = self.updates.before(node)
        self._pending = (rule, states, tuple(cuda.to_device(s) for s in states))
        return rule, cuda.to_device(np.asarray(hyper, dtype=np.float64)), self._pending[2]

    def after(self, node):
        rule, states, device_states = self._pending
        for host, device in zip(states, device_states):
            device.copy_to_host(host)
        if rule != kernels.ACCUMULATE:
            self.engine.pull_params(node.layer)
        self.updates.after(node)
