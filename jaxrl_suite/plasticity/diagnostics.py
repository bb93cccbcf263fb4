"""Plasticity diagnostics: feature effective rank, empirical-NTK rank, weight norm, gradient kurtosis.

Effective rank is srank (Kumar et al. 2021); the NTK is the gram of per-sample output
gradients used by C-CHAIN (arXiv 2506.00592); all are pure functions usable under jit and vmap
(their SVD and eigenvalues run one matrix at a time under vmap on CPU: serial_linalg).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp

from jaxrl_suite.optim import global_norm
from jaxrl_suite.xla_cpu.serial_linalg import singular_values, symmetric_eigenvalues

DEFAULT_RANK_DELTA = 0.01
# Replay observations the learners' evaluation-time diagnostics (feature and NTK rank) are measured on.
PROBE_SIZE = 32


def spectrum_rank(nonnegative_spectrum: jax.Array, delta: float = DEFAULT_RANK_DELTA) -> jax.Array:
    """Smallest k whose k largest values hold at least (1 - delta) of the total: [n] -> [] int32."""
    chex.assert_rank(nonnegative_spectrum, 1)
    descending = jnp.sort(nonnegative_spectrum)[::-1]
    cumulative = jnp.cumsum(descending) / jnp.maximum(descending.sum(), 1e-12)
    return (jnp.sum(cumulative < 1.0 - delta) + 1).astype(jnp.int32)


def effective_rank(features: jax.Array, delta: float = DEFAULT_RANK_DELTA) -> jax.Array:
    """srank of a feature matrix [num_samples, num_features] -> [] int32: the number of top
    singular values holding (1 - delta) of their sum."""
    chex.assert_rank(features, 2)
    return spectrum_rank(singular_values(features.astype(jnp.float32)), delta)


def ntk_gram(output_fn: Callable[[Any, jax.Array], jax.Array], params: Any, probe_inputs: jax.Array) -> jax.Array:
    """Empirical NTK on a probe batch: K = J J^T with J the per-sample output gradients.

    output_fn(params, inputs [N, ...]) -> [N, num_outputs]; returns [N * num_outputs, N * num_outputs].
    """

    def one_sample(sample: jax.Array) -> Any:
        return jax.jacrev(lambda p: output_fn(p, sample[None])[0])(params)

    jacobians = jax.vmap(one_sample)(probe_inputs)  # leaves [N, num_outputs, *param_shape]
    num_samples = probe_inputs.shape[0]
    flat = jnp.concatenate(
        [leaf.reshape(num_samples * leaf.shape[1], -1) for leaf in jax.tree.leaves(jacobians)], axis=1
    )
    return flat @ flat.T


def ntk_rank(
    output_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    probe_inputs: jax.Array,
    delta: float = DEFAULT_RANK_DELTA,
) -> jax.Array:
    """Rank of the empirical NTK: eigenvalues of K needed for (1 - delta) of its trace. [] int32."""
    eigenvalues = symmetric_eigenvalues(ntk_gram(output_fn, params, probe_inputs))
    return spectrum_rank(jnp.maximum(eigenvalues, 0.0), delta)


def weight_norm(params: Any) -> jax.Array:
    """[] L2 norm of all parameters together."""
    return global_norm(params)


def network_probe(unit_metrics: dict[str, jax.Array], output_fn: Callable[[Any, jax.Array], jax.Array],
                  params: Any, probe_inputs: jax.Array) -> dict[str, jax.Array]:
    """A network's evaluation-time diagnostics: its unit metrics (dormant ratio, feature rank,
    from `UnitPlasticity.probe`) with the empirical-NTK rank of `output_fn` on `probe_inputs`
    and the weight norm of `params`."""
    return {
        **unit_metrics,
        "ntk_rank": ntk_rank(output_fn, params, probe_inputs).astype(jnp.float32),
        "weight_norm": weight_norm(params),
    }


def gradient_kurtosis(grads: Any) -> jax.Array:
    """[] kurtosis E[(g - mean)^4] / Var[g]^2 of all gradient entries pooled (3 for a Gaussian)."""
    flat = jnp.concatenate([leaf.reshape(-1).astype(jnp.float32) for leaf in jax.tree.leaves(grads)])
    centered = flat - flat.mean()
    variance = jnp.mean(jnp.square(centered))
    return jnp.mean(centered**4) / jnp.maximum(jnp.square(variance), 1e-30)
