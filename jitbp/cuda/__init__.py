"""CUDA targets: device kernels for the built-in layers, losses and optimizers, and the
engine that runs a network on ``device="cuda"``. Nothing here is imported by a CPU run.
"""
