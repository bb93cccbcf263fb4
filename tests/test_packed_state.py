"""packed_state: a train state as one array per dtype and back, exactly, with one-line refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.runner.packed_state import pack_state, unpack_state


def _tree():
    return {"params": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.array([7.0, 8.0])},
            "flags": jnp.array([True, False, True]), "count": jnp.array(5, jnp.int32),
            "empty": jnp.zeros((0, 4), jnp.float32), "half": jnp.array([1.5, -2.0], jnp.bfloat16),
            "nothing": None}


def test_pack_concatenates_per_dtype_in_tree_order_and_round_trips_exactly():
    packed, layout = pack_state(_tree())
    assert sorted(packed) == ["bfloat16", "bool", "float32", "int32"]
    # tree order of the dict keys: count, empty, flags, half, params/b, params/w
    np.testing.assert_array_equal(packed["float32"], [7.0, 8.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(packed["bool"], [True, False, True])
    assert layout[1] == ["['empty']", "float32", [0, 4]] and layout[-1] == ["['params']['w']", "float32", [2, 3]]
    restored = unpack_state(packed, layout, jax.eval_shape(_tree))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), restored, _tree())
    assert restored["nothing"] is None and restored["half"].dtype == jnp.bfloat16


def test_pack_copies_so_the_source_may_change_afterwards():
    source = np.ones(3, np.float32)
    packed, _ = pack_state({"x": source})
    source[:] = 0.0
    np.testing.assert_array_equal(packed["float32"], [1.0, 1.0, 1.0])


def test_a_dtype_with_only_empty_leaves_is_stored_as_one_placeholder():
    packed, layout = pack_state({"e": np.zeros((0,), np.int32)})
    assert packed["int32"].shape == (1,)
    assert unpack_state(packed, layout, {"e": jax.ShapeDtypeStruct((0,), jnp.int32)})["e"].shape == (0,)


@pytest.mark.parametrize("target, message", [
    ({"a": jax.ShapeDtypeStruct((3,), jnp.float32), "b": jax.ShapeDtypeStruct((1,), jnp.float32)},
     "the checkpoint has no ['b']: it was written by a version of jaxrl_suite with another train state"),
    ({}, r"the checkpoint holds ['a'], which this version's train state has not"),
    ({"a": jax.ShapeDtypeStruct((4,), jnp.float32)}, r"other shapes or dtypes than this run's (['a']: float32[3] stored"),
    ({"a": jax.ShapeDtypeStruct((3,), jnp.int32)}, "float32[3] stored, int32[3] expected"),
])
def test_other_layouts_are_refused_in_one_line(target, message):
    packed, layout = pack_state({"a": np.zeros(3, np.float32)})
    with pytest.raises(ValueError) as error:
        unpack_state(packed, layout, target)
    assert message in str(error.value) and "\n" not in str(error.value)
