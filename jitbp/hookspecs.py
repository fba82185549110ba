"""The hooks a jitbp plugin may implement."""
import pluggy

hookspec = pluggy.HookspecMarker("jitbp")
hookimpl = pluggy.HookimplMarker("jitbp")


@hookspec
def register_layers(register):
    """Register layer classes: call ``register(LayerClass)`` once per layer.

    ``LayerClass`` subclasses :class:`jitbp.Layer` and sets ``kind`` (the name users
    pass to :func:`jitbp.layer`), ``forward_kernel`` and ``backward_kernel``.
    """


@hookspec
def register_losses(register):
    """Register losses: call ``register(loss)`` once per :class:`jitbp.losses.Loss` record
    (name, CPU kernel, optional weighted kernel and CUDA launcher, target check, reduction)."""


@hookspec
def register_optimizers(register):
    """Register optimizers: call ``register(OptimizerClass)`` once per :class:`jitbp.Optimizer`
    subclass whose ``spec`` is a :class:`jitbp.rules.Rule` with a new id (its rule runs from a
    gradient buffer per layer; only the built-in rules are fused into the layers' kernels)."""
