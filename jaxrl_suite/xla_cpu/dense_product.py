"""A Dense layer's product x @ W whose weight gradient is computed in a faster layout on CPU.

XLA's CPU backend computes the weight gradient x^T @ g (contracting the batch axis of both) well
below its plain-product rate for wide inputs or narrow outputs. Computing (g^T @ x)^T instead,
with g^T materialized (it is small) and the transposes kept out of XLA's dot folding, returns the
same numbers up to float summation order. Other platforms keep XLA's own gradient.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

# Kernels [in_features, out_features] for which the transposed form measured faster on a 2-core
# CPU (benchmarks/dense_weight_grad.py): inputs wider than outputs, or both at least this wide;
# never for a single output, where both forms are a matrix-vector product.
WIDE_FEATURES = 128


def transposed_weight_grad_pays(in_features: int, out_features: int) -> bool:
    """Whether (g^T @ x)^T beats x^T @ g on CPU for a [in_features, out_features] kernel."""
    if out_features == 1:
        return False
    return in_features > out_features or min(in_features, out_features) >= WIDE_FEATURES


def _dense_numbers(x_ndim: int) -> tuple:
    """lax.dot_general's dimension numbers of x [..., in] @ kernel [in, out], as flax's Dense passes them."""
    return (((x_ndim - 1,), (0,)), ((), ()))


def plain_weight_grad(x: jax.Array, g: jax.Array, precision: Any = None) -> jax.Array:
    """x [rows, in], g [rows, out] -> x^T @ g [in, out], as XLA's own gradient computes it."""
    return jax.lax.dot_general(x, g, (((0,), (0,)), ((), ())), precision=precision)


def transposed_weight_grad(x: jax.Array, g: jax.Array, precision: Any = None) -> jax.Array:
    """x [rows, in], g [rows, out] -> (g^T @ x)^T [in, out]: the same values, the CPU-fast layout."""
    g_transposed = jax.lax.optimization_barrier(g.T)  # materialized: [out, batch] row-major
    product = jnp.matmul(g_transposed, x, precision=precision)  # [out, in], a plain product
    return jax.lax.optimization_barrier(product).T


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def dense_product(x: jax.Array, kernel: jax.Array, precision: Any = None) -> jax.Array:
    """x [..., in] @ kernel [in, out] -> [..., out], as lax.dot_general computes it."""
    return jax.lax.dot_general(x, kernel, _dense_numbers(x.ndim), precision=precision)


def _forward(x, kernel, precision):
    return dense_product(x, kernel, precision), (x, kernel)


def _backward(precision, residuals, g):
    x, kernel = residuals
    x_rows = x.reshape(-1, x.shape[-1])
    g_rows = g.reshape(-1, g.shape[-1])
    in_features, out_features = kernel.shape
    if transposed_weight_grad_pays(in_features, out_features):
        kernel_grad = jax.lax.platform_dependent(
            x_rows, g_rows,
            cpu=partial(transposed_weight_grad, precision=precision),
            default=partial(plain_weight_grad, precision=precision),
        )
    else:
        kernel_grad = plain_weight_grad(x_rows, g_rows, precision)
    x_grad = jax.lax.dot_general(g, kernel, (((g.ndim - 1,), (1,)), ((), ())), precision=precision)
    return x_grad.astype(x.dtype), kernel_grad.astype(kernel.dtype)


dense_product.defvjp(_forward, _backward)


def dense_dot_general(
    lhs: jax.Array,
    rhs: jax.Array,
    dimension_numbers: Any,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """A `dot_general` for flax's nn.Dense: its x @ kernel goes through `dense_product`;
    any other contraction is lax.dot_general's."""
    if (rhs.ndim != 2 or preferred_element_type is not None
            or _as_tuples(dimension_numbers) != _dense_numbers(lhs.ndim)):
        return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                                   preferred_element_type=preferred_element_type)
    return dense_product(lhs, rhs, precision)


def _as_tuples(dimension_numbers: Any) -> Any:
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    return ((tuple(lhs_contract), tuple(rhs_contract)), (tuple(lhs_batch), tuple(rhs_batch)))
