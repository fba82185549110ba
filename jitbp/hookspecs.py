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
