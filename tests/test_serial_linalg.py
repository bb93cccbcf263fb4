"""serial_linalg: the same values as jnp.linalg alone, vmapped and vmapped twice, with the
batch run one matrix at a time on CPU (a while loop, not one batched LAPACK call)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.xla_cpu.serial_linalg import qr, singular_values, symmetric_eigenvalues


def _symmetric(matrix):
    return matrix @ matrix.T


CASES = {
    "qr": (qr, lambda m: tuple(jnp.linalg.qr(m)), lambda m: m),
    "singular_values": (singular_values, lambda m: jnp.linalg.svd(m, compute_uv=False), lambda m: m),
    "symmetric_eigenvalues": (symmetric_eigenvalues, jnp.linalg.eigvalsh, _symmetric),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_equal_jnp_alone_vmapped_and_nested(name):
    ours, reference, prepare = CASES[name]
    matrices = jax.vmap(prepare)(jax.random.normal(jax.random.PRNGKey(0), (6, 5, 5)))
    for one in matrices[:2]:
        jax.tree.map(np.testing.assert_array_equal, ours(one), reference(one))
    vmapped = jax.jit(jax.vmap(ours))
    batched_reference = jax.vmap(reference)(matrices)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), vmapped(matrices),
                 batched_reference)
    nested = jax.jit(jax.vmap(jax.vmap(ours)))(matrices.reshape(2, 3, 5, 5))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a.reshape(b.shape), b, rtol=1e-5, atol=1e-5), nested,
                 batched_reference)
    # An unbatched operand inside a vmap is computed once, not per member.
    constant = jax.vmap(lambda _: ours(matrices[0]))(jnp.arange(3))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, np.broadcast_to(b, a.shape), rtol=1e-5, atol=1e-5),
                 constant, reference(matrices[0]))
    if jax.default_backend() == "cpu":
        assert "while" in vmapped.lower(matrices).as_text()
