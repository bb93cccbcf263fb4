"""Multilayer perceptron trunks with optional LayerNorm and residual connections.

Orthogonal initialization as in PPO implementations (Engstrom et al. 2020, "Implementation Matters").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import numpy as np

from jaxrl_suite.networks.initializers import orthogonal
from jaxrl_suite.xla_cpu.dense_product import dense_dot_general

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


def activation_by_name(name: str) -> Callable[[jax.Array], jax.Array]:
    """Looks up an activation function; raises ValueError listing the valid names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is not known; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def orthogonal_dense(features: int, scale: float = float(np.sqrt(2.0)), name: str | None = None) -> nn.Dense:
    """A Dense layer with orthogonal kernel (gain `scale`) and zero bias; its product's weight
    gradient takes the faster CPU layout (`dense_product`)."""
    return nn.Dense(
        features, kernel_init=orthogonal(scale), bias_init=nn.initializers.zeros,
        dot_general=dense_dot_general, name=name,
    )


class MLP(nn.Module):
    """Dense layers: [..., in_dim] -> [..., hidden_sizes[-1]] (identity if hidden_sizes is empty).

    Each layer is Dense -> (LayerNorm) -> activation; with `residual`, a layer whose input and
    output widths match adds its input back (x + f(x)), which keeps deep trunks trainable.
    """

    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    layer_norm: bool = False
    residual: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        activation = activation_by_name(self.activation)
        for width in self.hidden_sizes:
            hidden = orthogonal_dense(width)(x)
            if self.layer_norm:
                hidden = nn.LayerNorm()(hidden)
            hidden = activation(hidden)
            x = x + hidden if self.residual and x.shape[-1] == width else hidden
        return x
