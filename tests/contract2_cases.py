"""Kit cases (jitbp.testing.LayerCase) of the contract-2 built-in layers: the list to merge into
jitbp.testing.builtin_cases() once the kit runs contract-2 kernels."""
from jitbp.testing import LayerCase

CONTRACT2_CASES = [
    LayerCase("dropout", 0.3, input_shapes=[(2, 3)]),
    LayerCase("dropout", 0.0, input_shapes=[(4,)]),
    LayerCase("batchnorm", 4, input_shapes=[(4,)]),
    LayerCase("batchnorm", 2, momentum=0.2, eps=1e-3, input_shapes=[(2, 3)], id="batchnorm(2,momentum=0.2,eps=0.001)"),
    LayerCase("layernorm", 4, input_shapes=[(4,)]),
    LayerCase("layernorm", 3, elementwise_affine=False, input_shapes=[(2, 3)], id="layernorm(3,elementwise_affine=False)"),
    LayerCase("leaky_relu", 0.2, input_shapes=[(2, 3)]),
    LayerCase("elu", 0.7, input_shapes=[(2, 3)]),
    LayerCase("gelu", input_shapes=[(2, 3)]),
    LayerCase("gelu", approximate="tanh", input_shapes=[(2, 3)], id="gelu(approximate='tanh')"),
    LayerCase("silu", input_shapes=[(2, 3)]),
    LayerCase("softplus", 2.0, 1.5, input_shapes=[(2, 3)]),
]
