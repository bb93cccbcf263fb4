"""Orbax checkpoints of the COMPLETE train state (params, optimizer, normalizer, env, RNG, buffers).

Saves are atomic (Orbax writes to a temporary directory then renames) and the last k are kept.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not match the run's train state."""


def _is_empty(leaf: Any) -> bool:
    return hasattr(leaf, "shape") and 0 in leaf.shape


def _storable(tree: Any) -> Any:
    """Orbax refuses zero-size arrays (e.g. MuJoCo's actuator state of a model without actuator
    dynamics): each is stored as a one-element placeholder and rebuilt from the target's shape."""
    return jax.tree.map(lambda leaf: jnp.zeros((1,), leaf.dtype) if _is_empty(leaf) else leaf, tree)


def _rebuild_empty(restored: Any, target: Any) -> Any:
    return jax.tree.map(lambda value, spec: jnp.zeros(spec.shape, spec.dtype) if _is_empty(spec) else value,
                        restored, target)


def _manager(directory: pathlib.Path, keep: int, read_only: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=not read_only, read_only=read_only, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(directory.absolute(), options=options)


class Checkpointer:
    """Keeps the last `keep` checkpoints of (train_state, metadata) under `directory`."""

    def __init__(self, directory: str | pathlib.Path, keep: int = 3):
        self.directory = pathlib.Path(directory)
        self.keep = keep
        self._manager: ocp.CheckpointManager | None = None

    @property
    def manager(self) -> ocp.CheckpointManager:
        if self._manager is None:
            self._manager = _manager(self.directory, self.keep)
        return self._manager

    def save(self, step: int, train_state: Any, metadata: dict[str, Any]) -> None:
        self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_storable(train_state)), metadata=ocp.args.JsonSave(metadata)
            ),
            force=True,
        )
        self.manager.wait_until_finished()

    def latest_step(self) -> int | None:
        if not self.directory.is_dir():
            return None
        return _manager(self.directory, self.keep, read_only=True).latest_step()

    def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores the latest (or given) checkpoint into the structure of `abstract_state`.

        Raises CheckpointError with the directory and the cause; nothing on disk is changed.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint found in {self.directory}; nothing to resume from")
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
        try:
            restored = _manager(self.directory, self.keep, read_only=True).restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(_storable(target)), metadata=ocp.args.JsonRestore()
                ),
            )
        except Exception as error:  # Orbax raises many types for truncated or foreign files
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} could not be restored "
                f"({type(error).__name__}: {error}); the run directory was left unchanged"
            ) from error
        return _rebuild_empty(restored.state, target), restored.metadata

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None
