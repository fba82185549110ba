"""GEMM with alpha and beta from Numba code, through the BLAS that Numba's ``np.dot`` uses.

``np.dot`` in Numba can only overwrite its output; the fused SGD update needs
``W <- W - lr * dY^T X`` written straight into W: one GEMM with ``alpha = -lr`` and
``beta = 1``, and no gradient array at all. The call goes to Numba's own
``numba_xxgemm`` helper (SciPy's ``cython_blas`` underneath) by symbol name, so the
kernels that use it stay cacheable, unlike a ctypes function pointer.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.linalg import check_blas_return, ensure_blas, get_blas_kind

_char = ir.IntType(8)
_void_p = ir.IntType(8).as_pointer()


@intrinsic
def add_dyt_x(typingctx, alpha, dy, x, out, beta):
    """``out <- beta * out + alpha * dy.T @ x`` for C-ordered ``dy`` (n, m), ``x`` (n, k), ``out`` (m, k)."""
    arrays = (dy, x, out)
    if not all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" and a.dtype == out.dtype
               for a in arrays):
        return None
    ensure_blas()
    kind = get_blas_kind(out.dtype, "add_dyt_x")

    def codegen(context, builder, signature, args):
        alpha_value, dy_value, x_value, out_value, beta_value = args
        intp = context.get_value_type(types.intp)
        fnty = ir.FunctionType(ir.IntType(32), [_char, _char, _char, intp, intp, intp, _void_p, _void_p, intp,
                                                _void_p, intp, _void_p, _void_p, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        dy_array = context.make_array(dy)(context, builder, dy_value)
        x_array = context.make_array(x)(context, builder, x_value)
        out_array = context.make_array(out)(context, builder, out_value)
        n, m = cgutils.unpack_tuple(builder, dy_array.shape)
        k = cgutils.unpack_tuple(builder, x_array.shape)[1]

        def slot(value, ty):
            stored = cgutils.alloca_once_value(builder, context.cast(builder, value, ty, out.dtype))
            return builder.bitcast(stored, _void_p)

        # Column-major view: out^T (k, m) = alpha * x^T (k, n) @ dy (n, m) + beta * out^T.
        result = builder.call(fn, (
            ir.Constant(_char, ord(kind)), ir.Constant(_char, ord("n")), ir.Constant(_char, ord("t")),
            k, m, n, slot(alpha_value, signature.args[0]), builder.bitcast(x_array.data, _void_p), k,
            builder.bitcast(dy_array.data, _void_p), m, slot(beta_value, signature.args[4]),
            builder.bitcast(out_array.data, _void_p), k))
        check_blas_return(context, builder, result)
        return context.get_dummy_value()

    return types.void(alpha, dy, x, out, beta), codegen
