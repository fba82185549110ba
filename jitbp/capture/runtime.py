"""The runtime of a captured epoch: packs the engine's buffers into the compiled function's arguments."""
import numpy as np

from ..culprit import COMPILE_ERRORS, captured_compile_error
from .cache import compiled
from .codegen import Source


class CapturedEpoch:
    """A compiled epoch for one network and loss; ``None`` from :meth:`build` if not capturable."""

    def __init__(self, net, loss, text, scratch, ahead, contexts):
        self.net = net
        self.loss = loss
        self.text = text
        #: The generated module, imported and compiled at the first :meth:`run`.
        self.module = None
        self._scratch = scratch
        self._ahead = ahead
        #: True when the epoch takes the contract-2 argument ``C`` (:meth:`_contexts`).
        self._has_contexts = contexts

    @classmethod
    def build(cls, net, loss):
        try:
            source = Source(net, loss)
        except LookupError:
            return None
        return cls(net, loss, source.text(loss), source.scratch, sorted(source.ahead), source.contexts)

    def _contexts(self, engine, updates):
        """``C``: per call the settings, the state tuple, the random key and the gradient
        scratch, then the training steps taken before this epoch."""
        calls = self.net.calls
        return (tuple(self.net.layer_settings[id(node.layer)] for node in calls),
                tuple(tuple(node.layer.state.values()) for node in calls),
                np.array(updates.seeds, dtype=np.uint64),
                tuple(engine.gradient_scratch(node.layer) for node in calls),
                np.int64(updates.steps_done))

    def _buffers(self, engine, batch, inputs, target):
        bufs = engine.buffers(batch)
        key = ("captured", id(self))
        packed = bufs.extra.get(key)
        if packed is None:
            net = self.net
            scratch = tuple(bufs.scratch(k, slot, net.calls[k].inputs[slot].shape, net.dtype)
                            for k, slot in self._scratch)
            packed = bufs.extra[key] = (
                tuple(np.empty((batch,) + x.shape[1:], x.dtype) for x in inputs),
                np.empty((batch,) + target.shape[1:], target.dtype),
                tuple(bufs.values), tuple(bufs.deltas), tuple(bufs.workspaces), scratch)
        return packed

    def _ahead_buffers(self, engine, batch, packed):
        """``packed`` with its own inputs and outputs of the input-fed calls: the next
        batch is written there while the current one is still being unwound."""
        key = ("captured-ahead", id(self))
        bufs = engine.buffers(batch)
        following = bufs.extra.get(key)
        if following is None:
            inputs, target, values, deltas, workspaces, scratch = packed
            values = tuple(np.empty_like(v) if k in self._ahead else v for k, v in enumerate(values))
            following = bufs.extra[key] = (tuple(np.empty_like(x) for x in inputs), target, values, deltas,
                                           workspaces, scratch)
        return following

    def run(self, engine, inputs, target, order, size, updates, lrs=None, wait=True):
        """One epoch, as :meth:`Engine.train_epoch` returns it (``lrs``: the learning rate of
        each batch, default ``optimizer.lr`` throughout); ``None`` if the parameters' step
        counts differ, no cache directory works or, unless ``wait``, the epoch is still being
        compiled by another process (the interpreted engine handles those)."""
        net = self.net
        optimizer = updates.optimizer
        n = len(target)
        layer_params = [tuple(node.layer.params.values()) for node in net.calls]
        all_params = [p for layer in net.layers for p in layer.params.values()]
        steps = optimizer.steps_taken(all_params) if all_params else {0}
        if len(steps) != 1:
            return None
        full = self._buffers(engine, size, inputs, target)
        part = full if n % size == 0 else self._buffers(engine, n % size, inputs, target)
        if order is None:
            order = np.arange(n)
        ahead = self._ahead_buffers(engine, size, full) if self._ahead else full
        args = (tuple(inputs), target, order, size, full, ahead, part, tuple(layer_params),
                tuple(optimizer.states(params) for params in layer_params),
                tuple(tuple(g.reshape(1, -1) for g in grads) for grads in updates.shared_grads()),
                optimizer.rule, optimizer.base_hyper(),
                np.full(-(-n // size), optimizer.lr) if lrs is None else lrs, steps.pop())
        if self._has_contexts:
            args += (self._contexts(engine, updates),)
        try:
            module = compiled(self.text, "epoch", args, wait)
        except COMPILE_ERRORS as error:  # name the layer whose kernel failed, not the generated module
            raise (captured_compile_error(net, self.text, error) or error) from error
        if module is None:
            return None
        self.module = module
        total, done, value = module.epoch(*args)
        optimizer.advance(all_params, done)
        if lrs is not None and done:
            optimizer.lr = lrs[done - 1]  # as the interpreted engine leaves it
        return (total, None, None) if np.isfinite(value) else (total, done, value)
