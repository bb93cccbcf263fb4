"""Networks made of members stacked on a leading parameter axis (a flax `nn.vmap` with
variable_axes={"params": 0}, e.g. SAC/TD3's critic ensemble): each member's neurons are its own.

The unit tools run on one member and are vmapped over that axis (see `UnitPlasticity(ensemble=...)`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp

from jaxrl_suite.plasticity.layout import PARAMS


@dataclasses.dataclass(frozen=True)
class StackedMembers:
    """Where an ensemble's members live and how one of them runs.

    path:         module path of the nn.vmap inside "params", e.g. ("critics",); every parameter of
                  the network sits below it with a leading [size] axis.
    size:         number of members.
    member_apply: apply of ONE member, (variables {"params": ...}, *inputs) -> outputs; the
                  network's outputs are the members' outputs stacked on a leading axis (inputs
                  shared by all members, nn.vmap's in_axes=None, out_axes=0).
    """

    path: tuple[str, ...]
    size: int
    member_apply: Callable[..., Any]

    def members(self, variables: Any) -> Any:
        """{"params": stacked member params}, every leaf [size, ...]; refuses networks with
        parameters outside the ensemble (they would be neither scored nor reset)."""
        params = variables[PARAMS]
        for name in self.path:
            if set(params) != {name}:
                raise ValueError(f"the ensemble at {'/'.join(self.path)!r} must hold every parameter of the "
                                 f"network; found {sorted(params)} at this level")
            params = params[name]
        chex.assert_tree_shape_prefix(params, (self.size,))
        return {PARAMS: params}

    def replace_members(self, variables: Any, members: Any) -> Any:
        """`variables` with the stacked member params replaced by `members` ({"params": ...})."""
        params = members[PARAMS]
        for name in reversed(self.path):
            params = {name: params}
        return {**variables, PARAMS: params}

    def one_member(self, variables: Any) -> Any:
        """ShapeDtypeStructs of one member's variables (for tracing its layout)."""
        return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape[1:], leaf.dtype), self.members(variables))

    def stack(self, member_values: Any) -> Any:
        """Zeros of one member's pytree with a leading [size] axis."""
        return jax.tree.map(lambda leaf: jnp.zeros((self.size, *leaf.shape), leaf.dtype), member_values)
