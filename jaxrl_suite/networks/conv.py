"""Convolutional torso for small image observations such as MinAtar's [10, 10, channels] grids.

Follows the MinAtar baseline network (Young & Tian 2019): 3x3 convolutions, then flatten.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.networks.initializers import orthogonal
from jaxrl_suite.networks.mlp import activation_by_name


class ConvTorso(nn.Module):
    """[..., height, width, channels] -> [..., features]: stride-1 convolutions, then flatten.

    Any leading batch dimensions are kept; the trunk MLP runs on the flattened features.
    """

    channels: Sequence[int] = (16,)
    kernel_size: int = 3
    activation: str = "relu"

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        if image.ndim < 3:
            raise ValueError(f"ConvTorso expects [..., height, width, channels], got shape {image.shape}")
        activation = activation_by_name(self.activation)
        batch_shape = image.shape[:-3]
        x = image.reshape((-1, *image.shape[-3:])).astype(jnp.float32)
        for num_channels in self.channels:
            x = nn.Conv(
                num_channels,
                (self.kernel_size, self.kernel_size),
                padding="VALID",
                kernel_init=orthogonal(np.sqrt(2.0)),
                bias_init=nn.initializers.zeros,
            )(x)
            x = activation(x)
        return x.reshape((*batch_shape, -1))
