"""Replay buffer: wrap-around writes, sampling from written slots only, and the memory check."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.agents.replay import (
    Transition,
    add_batch,
    check_replay_fits,
    init_replay,
    item_bytes,
    sample_batch,
)


def _items(values):
    values = jnp.asarray(values, jnp.float32)
    return {"x": values, "pair": jnp.stack([values, -values], axis=1)}


def test_add_fills_slots_in_order_and_wraps_around():
    buffer = init_replay(5, {"x": jnp.zeros(()), "pair": jnp.zeros((2,))})
    buffer = add_batch(buffer, _items([1, 2, 3]))
    assert int(buffer.size) == 3 and int(buffer.insert_position) == 3
    np.testing.assert_array_equal(buffer.data["x"], [1, 2, 3, 0, 0])
    buffer = add_batch(buffer, _items([4, 5, 6]))  # 6 overwrites the oldest item, 1
    assert int(buffer.size) == 5 and int(buffer.insert_position) == 1
    np.testing.assert_array_equal(buffer.data["x"], [6, 2, 3, 4, 5])
    np.testing.assert_array_equal(buffer.data["pair"][:, 1], [-6, -2, -3, -4, -5])
    buffer = add_batch(buffer, _items([7, 8, 9, 10, 11]))  # a full lap
    np.testing.assert_array_equal(buffer.data["x"], [11, 7, 8, 9, 10])
    assert int(buffer.insert_position) == 1


def test_sample_draws_only_written_slots_and_keeps_items_whole():
    buffer = add_batch(init_replay(100, {"x": jnp.zeros(()), "pair": jnp.zeros((2,))}), _items([7, 8, 9]))
    batch = jax.jit(sample_batch, static_argnums=2)(buffer, jax.random.PRNGKey(0), 2000)
    chex.assert_shape(batch["pair"], (2000, 2))
    assert set(np.unique(batch["x"]).tolist()) == {7.0, 8.0, 9.0}  # never an unwritten zero slot
    np.testing.assert_array_equal(batch["pair"][:, 0], batch["x"])
    np.testing.assert_array_equal(batch["pair"][:, 1], -batch["x"])


def test_add_rejects_batches_larger_than_capacity_and_mismatched_items():
    buffer = init_replay(2, {"x": jnp.zeros(())})
    with pytest.raises(ValueError, match="capacity 2"):
        add_batch(buffer, {"x": jnp.zeros((3,))})
    with pytest.raises(AssertionError):
        add_batch(buffer, {"x": jnp.zeros((1, 4))})


def test_memory_check_reports_gib_and_how_to_shrink():
    transition = Transition(
        obs=jax.ShapeDtypeStruct((10,), jnp.float32), action=jax.ShapeDtypeStruct((2,), jnp.float32),
        reward=jax.ShapeDtypeStruct((), jnp.float32), next_obs=jax.ShapeDtypeStruct((10,), jnp.float32),
        terminated=jax.ShapeDtypeStruct((), jnp.bool_), truncated=jax.ShapeDtypeStruct((), jnp.bool_),
    )
    assert item_bytes(transition) == 4 * (10 + 2 + 1 + 10) + 2
    one_gib = (2**30, "host RAM")
    assert check_replay_fits(1000, transition, available=one_gib) == 94_000
    with pytest.raises(ValueError, match=r"needs 8.75 GiB .* lower sac.buffer_size to at most 5,711,392"):
        check_replay_fits(100_000_000, transition, capacity_field="sac.buffer_size", available=one_gib)
    with pytest.raises(ValueError, match="2 x 6,000,000 transitions"):
        check_replay_fits(6_000_000, transition, copies=2, available=one_gib)
