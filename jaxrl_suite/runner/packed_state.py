"""A train state as one flat host array per dtype plus a layout, the form checkpoints store it in.

Orbax's cost per save grows with the number of arrays (a physics env state has hundreds), so the
leaves are concatenated per dtype; the layout names each leaf by its key path, which lets a
restore fill a field added later as None and refuse any other difference in one line.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Layout = list[list[Any]]  # [key path, dtype name, shape] per leaf, in tree order


def pack_state(tree: Any) -> tuple[dict[str, np.ndarray], Layout]:
    """({dtype name: 1-D copy of every leaf of that dtype, concatenated}, layout). The arrays are
    fresh host copies, so the tree's buffers may be donated as soon as this returns; a dtype whose
    leaves are all empty is stored as one zero (Orbax refuses zero-size arrays)."""
    parts: dict[str, list[np.ndarray]] = {}
    layout: Layout = []
    names: dict[np.dtype, str] = {}  # np.dtype.name is slow enough to matter for thousands of leaves
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        array = np.asarray(leaf)
        name = names.get(array.dtype) or names.setdefault(array.dtype, array.dtype.name)
        parts.setdefault(name, []).append(array.reshape(-1))
        layout.append([jax.tree_util.keystr(path), name, list(array.shape)])
    packed = {name: np.concatenate(arrays) if sum(a.size for a in arrays) else np.zeros((1,), arrays[0].dtype)
              for name, arrays in parts.items()}
    return packed, layout


def _field(path: str) -> str:
    return path.lstrip(".")


def unpack_state(packed: dict[str, Any], layout: Layout, target: Any) -> Any:
    """The tree of `target` (arrays or ShapeDtypeStructs, placed on each one's sharding if it has
    one) filled from `pack_state`'s output; ValueError in one line when the layouts differ other
    than by fields that are None in `target`."""
    offsets: dict[str, tuple[str, int, tuple[int, ...]]] = {}
    ends: dict[str, int] = {}
    for path, dtype, shape in layout:
        start = ends.get(dtype, 0)
        offsets[path] = (dtype, start, tuple(shape))
        ends[dtype] = start + int(np.prod(shape, dtype=np.int64))
    flat, treedef = jax.tree_util.tree_flatten_with_path(target)
    paths = [jax.tree_util.keystr(path) for path, _ in flat]
    missing = [path for path in paths if path not in offsets]
    if missing:
        raise ValueError(f"the checkpoint has no {_field(missing[0])}: it was written by a version of jaxrl_suite "
                         f"with another train state; continue it with that version, or start a new run")
    extra = sorted(set(offsets) - set(paths))
    if extra:
        raise ValueError(f"the checkpoint holds {', '.join(map(_field, extra))}, which this version's train "
                         "state has not")
    leaves = []
    for path, (_, spec) in zip(paths, flat, strict=True):
        dtype, start, shape = offsets[path]
        if dtype != np.dtype(spec.dtype).name or shape != tuple(spec.shape):
            raise ValueError(f"the checkpoint's train state has other shapes or dtypes than this run's "
                             f"({_field(path)}: {dtype}{list(shape)} stored, {np.dtype(spec.dtype).name}"
                             f"{list(spec.shape)} expected)")
        values = np.asarray(packed[dtype])[start:start + int(np.prod(shape, dtype=np.int64))].reshape(shape)
        sharding = getattr(spec, "sharding", None)
        leaves.append(jax.device_put(values, sharding) if sharding is not None else jnp.asarray(values))
    return treedef.unflatten(leaves)
