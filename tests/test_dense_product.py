"""dense_product: values and gradients equal lax.dot_general's (hand-computed and on random
inputs, batched, under vmap), and the dot_general that flax's Dense gets falls back for others."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.networks.mlp import orthogonal_dense
from jaxrl_suite.xla_cpu import dense_product as dp


def _reference(x, kernel):
    return jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))


def test_hand_computed_gradients():
    x = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # 2 rows, 3 inputs
    kernel = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])  # [3 in, 2 out]: the transposed form
    weights = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    assert dp.transposed_weight_grad_pays(3, 2)

    def loss(x, kernel):
        return jnp.sum(dp.dense_product(x, kernel) * weights)

    np.testing.assert_allclose(dp.dense_product(x, kernel), [[4.0, -1.0], [10.0, -1.0]])
    x_grad, kernel_grad = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, kernel)
    # d/dkernel = x^T @ weights; d/dx = weights @ kernel^T.
    np.testing.assert_allclose(kernel_grad, [[1.0, 8.0], [2.0, 10.0], [3.0, 12.0]])
    np.testing.assert_allclose(x_grad, [[1.0, 0.0, 1.0], [0.0, 2.0, -2.0]])


@pytest.mark.parametrize("batch_shape,in_features,out_features", [
    ((64,), 400, 64),   # transposed form
    ((8, 16), 64, 6),   # transposed form, two batch axes
    ((32,), 4, 64),     # plain form
    ((32,), 64, 1),     # plain form: a single output
])
def test_values_and_gradients_match_dot_general(batch_shape, in_features, out_features):
    x_key, k_key, w_key = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(x_key, (*batch_shape, in_features))
    kernel = jax.random.normal(k_key, (in_features, out_features))
    weights = jax.random.normal(w_key, (*batch_shape, out_features))

    def loss(product):
        return lambda x, kernel: jnp.sum(jnp.tanh(product(x, kernel)) * weights)

    ours = jax.jit(jax.value_and_grad(loss(dp.dense_product), argnums=(0, 1)))(x, kernel)
    theirs = jax.jit(jax.value_and_grad(loss(_reference), argnums=(0, 1)))(x, kernel)
    chex.assert_trees_all_equal_shapes_and_dtypes(ours, theirs)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-4)


def test_both_weight_gradient_forms_agree_and_the_choice_follows_the_shapes():
    x = jax.random.normal(jax.random.PRNGKey(1), (256, 40))
    g = jax.random.normal(jax.random.PRNGKey(2), (256, 24))
    plain = jax.jit(dp.plain_weight_grad)(x, g)
    chex.assert_shape(plain, (40, 24))
    np.testing.assert_allclose(jax.jit(dp.transposed_weight_grad)(x, g), plain, rtol=1e-5, atol=1e-4)
    assert dp.transposed_weight_grad_pays(400, 64) and dp.transposed_weight_grad_pays(256, 256)
    assert not dp.transposed_weight_grad_pays(64, 64) and not dp.transposed_weight_grad_pays(4, 64)
    assert not dp.transposed_weight_grad_pays(256, 1)


def test_gradients_under_vmap_match_each_seed_alone():
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    xs = jax.vmap(lambda k: jax.random.normal(k, (128, 96)))(keys)
    kernels = jax.vmap(lambda k: jax.random.normal(k, (96, 8)))(keys)

    def kernel_grad(x, kernel):
        return jax.grad(lambda k: jnp.sum(dp.dense_product(x, k) ** 2))(kernel)

    batched = jax.jit(jax.vmap(kernel_grad))(xs, kernels)
    for seed in range(3):
        alone = jax.grad(lambda k, s=seed: jnp.sum(_reference(xs[s], k) ** 2))(kernels[seed])
        np.testing.assert_allclose(batched[seed], alone, rtol=1e-5, atol=1e-3)


def test_flax_dense_keeps_its_parameters_and_falls_back_for_other_contractions():
    layer = orthogonal_dense(5)
    x = jnp.ones((3, 7))
    params = layer.init(jax.random.PRNGKey(0), x)
    chex.assert_trees_all_equal_shapes(params, nn.Dense(5).init(jax.random.PRNGKey(0), x))
    np.testing.assert_allclose(layer.apply(params, x), x @ params["params"]["kernel"], rtol=1e-6)

    lhs = jax.random.normal(jax.random.PRNGKey(4), (3, 4, 5))
    rhs = jax.random.normal(jax.random.PRNGKey(5), (4, 5, 2))
    numbers = (((1, 2), (0, 1)), ((), ()))  # DenseGeneral over two axes
    np.testing.assert_allclose(dp.dense_dot_general(lhs, rhs, numbers), jax.lax.dot_general(lhs, rhs, numbers),
                               rtol=1e-6)
