"""Orbax checkpoints of the COMPLETE train state (params, optimizer, normalizer, env, RNG, buffers).

Saves are atomic (Orbax writes to a temporary directory then renames) and the last k are kept;
a resume falls back to the newest checkpoint that restores (`restore_newest_intact`). The state
is stored packed (packed_state.py: one array per dtype); checkpoints of the earlier one-array-
per-leaf layout, and those of multi-process runs, are read and written as Orbax trees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import pathlib
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import serialization

from jaxrl_suite.runner.packed_state import pack_state, unpack_state

PACKED_ITEM, LAYOUT_ITEM, STATE_ITEM = "packed", "layout", "state"  # a checkpoint's items besides "metadata"


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


def _completed(on_disk: Any, template: Any, path: str = "") -> Any:
    """The state dict read without a target, with each field the template holds as None (a
    train-state field added after the checkpoint was written, e.g. an unused method's state)
    filled in as None; ValueError naming the first other difference."""
    if not isinstance(template, dict):
        return on_disk
    if on_disk is None and not jax.tree.leaves(template):  # an empty state (optax.EmptyState) is stored as None
        return template
    if isinstance(on_disk, (list, tuple)):  # sequences are stored as lists, state dicts key them "0", "1", ...
        on_disk = {str(index): value for index, value in enumerate(on_disk)}
    if not isinstance(on_disk, dict):
        raise ValueError(f"{path or 'the train state'} is {type(on_disk).__name__} on disk, expected fields")
    completed = {}
    for key, value in template.items():
        if key in on_disk:
            completed[key] = _completed(on_disk[key], value, f"{path}.{key}" if path else key)
        elif value is None:
            completed[key] = None
        else:
            raise ValueError(f"the checkpoint has no {path + '.' if path else ''}{key}: it was written by a "
                             f"version of jaxrl_suite with another train state; continue it with that version, "
                             f"or start a new run")
    extra = sorted(set(on_disk) - set(template))
    if extra:
        raise ValueError(f"the checkpoint holds {', '.join(extra)}, which this version's train state has not")
    return completed


def _matches(restored: Any, target: Any) -> bool:
    try:
        return jax.tree.structure(restored) == jax.tree.structure(target) and all(
            tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype
            for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(target), strict=True))
    except ValueError:
        return False


# After a failed read TensorStore's remaining callbacks report "Event loop is closed" tracebacks into
# the closed asyncio loop of Orbax's restore for a moment (measured: within 0.3 s on local files).
FAILED_READ_SETTLE_SECONDS = 0.3


def _closed_loop_callback(unraisable: Any) -> bool:
    return isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(unraisable.exc_value)


@contextlib.contextmanager
def quiet_orbax() -> Iterator[None]:
    """Silences what reading checkpoints prints besides our own errors: Orbax's absl warnings
    (three per read-only manager) and, after a failed restore, TensorStore's late "Event loop is
    closed" reports (unraisable exceptions; anything else on stderr goes to a dropped buffer)."""
    absl_logger, unraisable_hook = logging.getLogger("absl"), sys.unraisablehook
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    sys.unraisablehook = lambda unraisable: None if _closed_loop_callback(unraisable) else unraisable_hook(unraisable)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                yield
            except Exception:
                time.sleep(FAILED_READ_SETTLE_SECONDS)
                raise
    finally:
        absl_logger.setLevel(level)
        sys.unraisablehook = unraisable_hook


def describe_error(error: BaseException, limit: int = 160) -> str:
    """`Type: first line of the message`, without TensorStore's JSON specs, at most ~limit chars."""
    text = str(error).split(" [tensorstore_spec", 1)[0].strip().splitlines()
    text = f"{type(error).__name__}: {text[0] if text else ''}"
    return text if len(text) <= limit else f"{text[: limit // 3]} ... {text[-(limit - limit // 3 - 5):]}"


@dataclasses.dataclass
class Restored:
    """A restored checkpoint: train state, metadata, its step, and the newer steps that could not
    be restored ({step: reason}, newest first)."""

    state: Any
    metadata: dict[str, Any]
    step: int
    unreadable: dict[int, str]


def _manager(directory: pathlib.Path, keep: int, read_only: bool = False,
             asynchronous: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=not read_only, read_only=read_only, enable_async_checkpointing=asynchronous
    )
    return ocp.CheckpointManager(directory.absolute(), options=options)


class Checkpointer:
    """Keeps the last `keep` checkpoints of (train_state, metadata) under `directory`.

    asynchronous=True: `save` returns once the state is packed into host memory, while Orbax
    writes it in the background (the next save and `close` wait for it); the caller may
    donate the state's buffers to its next program at once. Multi-process runs save synchronously.
    """

    def __init__(self, directory: str | pathlib.Path, keep: int = 3, asynchronous: bool = False):
        self.directory = pathlib.Path(directory)
        self.keep = keep
        self.packed = jax.process_count() == 1  # a multi-process run's global arrays are stored as Orbax trees
        self.asynchronous = asynchronous and self.packed
        self._manager: ocp.CheckpointManager | None = None

    @property
    def manager(self) -> ocp.CheckpointManager:
        if self._manager is None:
            self._manager = _manager(self.directory, self.keep, asynchronous=self.asynchronous)
        return self._manager

    def save(self, step: int, train_state: Any, metadata: dict[str, Any]) -> None:
        if self.packed:  # fresh host arrays: the caller may donate its buffers now
            packed, layout = pack_state(train_state)
            items = {PACKED_ITEM: ocp.args.StandardSave(packed), LAYOUT_ITEM: ocp.args.JsonSave({"leaves": layout})}
        else:  # global arrays that no one process holds whole
            items = {STATE_ITEM: ocp.args.StandardSave(_storable(train_state))}
        self.manager.save(step, args=ocp.args.Composite(**items, metadata=ocp.args.JsonSave(metadata)), force=True)
        if not self.asynchronous:
            self.manager.wait_until_finished()

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def all_steps(self) -> list[int]:
        """Committed steps, oldest first (Orbax skips unfinished `*.orbax-checkpoint-tmp` ones)."""
        if not self.directory.is_dir():
            return []
        with quiet_orbax():
            return sorted(_manager(self.directory, self.keep, read_only=True).all_steps())

    def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores the latest (or given) checkpoint into the structure of `abstract_state`.

        Raises CheckpointError with the directory and the cause; nothing on disk is changed.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint found in {self.directory}; nothing to resume from")
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
        try:
            if (self.directory / str(step) / PACKED_ITEM).is_dir():
                return self._read_packed(step, target)
            try:
                state, metadata = self._read(step, _storable(target))
            except ValueError as error:
                if "structure" not in str(error).lower():  # Orbax: "... tree structures do not match", "Structure mismatch"
                    raise
                state, metadata = self._read_older_layout(step, target)
        except Exception as error:  # Orbax raises many types for truncated or foreign files
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} could not be restored "
                f"({describe_error(error)}); the run directory was left unchanged"
            ) from error
        return _rebuild_empty(state, target), metadata

    def _read_packed(self, step: int, target: Any) -> tuple[Any, dict[str, Any]]:
        """(state, metadata) of packed checkpoint `step`, into the structure of `target`."""
        with quiet_orbax():
            manager = _manager(self.directory, self.keep, read_only=True)
            try:
                restored = manager.restore(step, args=ocp.args.Composite(**{
                    PACKED_ITEM: ocp.args.StandardRestore(), LAYOUT_ITEM: ocp.args.JsonRestore(),
                    "metadata": ocp.args.JsonRestore()}))
            finally:
                manager.close()
        return unpack_state(getattr(restored, PACKED_ITEM), getattr(restored, LAYOUT_ITEM)["leaves"], target), restored.metadata

    def _read(self, step: int, item: Any) -> tuple[Any, dict[str, Any]]:
        """(state, metadata) of checkpoint `step`, into the structure of `item` (None: as stored)."""
        with quiet_orbax():
            manager = _manager(self.directory, self.keep, read_only=True)
            try:
                restored = manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(item), metadata=ocp.args.JsonRestore()
                ))
            finally:
                manager.close()
        return restored.state, restored.metadata

    def _read_older_layout(self, step: int, target: Any) -> tuple[Any, dict[str, Any]]:
        """A checkpoint written before fields were added to the train state: read as stored, the
        added fields (None in `target`) filled in, and every leaf checked against `target`."""
        on_disk, metadata = self._read(step, None)
        storable = _storable(target)
        state = serialization.from_state_dict(
            storable, _completed(on_disk, serialization.to_state_dict(storable)))
        if not _matches(state, storable):
            raise ValueError("the checkpoint's train state has other shapes or dtypes than this run's")
        return state, metadata

    def restore_newest_intact(self, abstract_state: Any) -> Restored:
        """The newest checkpoint that restores, trying older ones after a failure; CheckpointError
        (one line, nothing on disk changed) when none does."""
        steps = self.all_steps()
        if not steps:
            raise CheckpointError(f"no checkpoint found in {self.directory}; nothing to resume from")
        unreadable: dict[int, str] = {}
        for step in reversed(steps):
            try:
                state, metadata = self.restore(abstract_state, step)
            except CheckpointError as error:
                unreadable[step] = describe_error(error.__cause__ or error)
                continue
            return Restored(state, metadata, step, unreadable)
        newest = steps[-1]
        raise CheckpointError(
            f"none of the checkpoints {', '.join(map(str, steps))} in {self.directory} could be restored "
            f"(checkpoint {newest}: {unreadable[newest]}); the run directory was left unchanged"
        )

    def set_aside(self, steps: list[int], destination: pathlib.Path) -> list[pathlib.Path]:
        """Moves the checkpoints of `steps` into `destination` (kept for inspection, out of the way
        of new saves of the same steps); returns where each went."""
        moved = []
        for step in steps:
            target = destination / str(step)
            copies = 1
            while target.exists():
                target, copies = destination / f"{step}-{copies}", copies + 1
            destination.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.directory / str(step)), target)
            moved.append(target)
        return moved

    def close(self) -> None:
        """Waits for pending saves, then releases Orbax's manager."""
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None
