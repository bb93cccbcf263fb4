"""The minibatch shuffle: a permutation of every size, deterministic per key, uniform over
orders (chi-square on all 24 orders of 4 items, and on where an item lands among 8,192)."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxrl_suite.xla_cpu import shuffle


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 1000, 8192, 8193])
def test_is_a_permutation(n):
    order = shuffle.permutation(jax.random.PRNGKey(n), n)
    chex.assert_shape(order, (n,))
    chex.assert_type(order, jnp.int32)
    np.testing.assert_array_equal(np.sort(np.asarray(order)), np.arange(n))


def test_same_key_same_order_other_key_other_order():
    first = shuffle.permutation(jax.random.PRNGKey(0), 512)
    np.testing.assert_array_equal(first, shuffle.permutation(jax.random.PRNGKey(0), 512))
    assert not np.array_equal(first, shuffle.permutation(jax.random.PRNGKey(1), 512))


def test_all_orders_of_four_items_are_equally_likely():
    draws = 24_000
    orders = jax.jit(jax.vmap(lambda key: shuffle.permutation(key, 4)))(jax.random.split(jax.random.PRNGKey(7), draws))
    index = {order: i for i, order in enumerate(itertools.permutations(range(4)))}
    counts = np.bincount([index[tuple(row)] for row in np.asarray(orders).tolist()], minlength=24)
    assert counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-3, counts


def test_position_of_each_item_is_uniform_at_minibatch_size():
    # 8,192 items: 13 index bits leave 19 random bits per round, so ties occur in every round
    # (about 64 tied pairs each); where item 0 lands must still be uniform over 8 equal blocks.
    n, draws = 8192, 800
    orders = jax.jit(jax.vmap(lambda key: shuffle.permutation(key, n)))(jax.random.split(jax.random.PRNGKey(3), draws))
    positions = np.argmax(np.asarray(orders) == 0, axis=1)
    counts = np.bincount(positions * 8 // n, minlength=8)
    assert stats.chisquare(counts).pvalue > 1e-3, counts


def test_bad_item_count_is_refused():
    with pytest.raises(ValueError, match="positive int item count"):
        shuffle.permutation(jax.random.PRNGKey(0), 0)
