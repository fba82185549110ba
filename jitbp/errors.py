"""Exceptions jitbp raises, each a subclass of the built-in a caller would expect."""


class ShapeError(ValueError):
    """An array has the wrong shape or length."""


class UnknownNameError(KeyError):
    """A layer, loss or optimizer name is not registered."""

    def __str__(self):
        return self.args[0] if self.args else ""


class PluginError(RuntimeError):
    """A plugin failed to import or broke the layer contract."""


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss; the parameters were left as they were."""


class ModelFileError(ValueError):
    """A model file is truncated, foreign, or of a newer format."""
