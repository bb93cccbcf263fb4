"""Data for the bias-shift study (arXiv 2506.09106): procedural Shapes16 images with known render
parameters, scikit-learn's 8x8 digits, and the disjoint splits A (generator), C (classifiers), B, B'."""

from __future__ import annotations

import dataclasses

import chex
import numpy as np

from jaxrl_suite.validation import require

DATASETS = ("shapes16", "digits")
SPLITS = ("A", "C", "B", "B_prime")

SHAPES16_SIDE = 16
# Major semi-axis range in pixels; the minor semi-axis is ASPECT times it. The largest rotated
# rectangle corner (5.5 * |(1, 0.55)| + stroke/2 = 7.4 px) stays inside the 8 px half-width.
SIZE_RANGE = (3.5, 5.5)
ASPECT = 0.55
THICKNESS_RANGE = (1.0, 2.2)
SLANT_STD, SLANT_LIMIT = 0.35, 0.9  # radians, clipped normal
# Brightness is bimodal with a gap: dim strokes in DIM_RANGE, bright strokes in BRIGHT_RANGE.
DIM_RANGE, BRIGHT_RANGE, BRIGHT_FRACTION = (0.35, 0.5), (0.8, 0.95), 0.5
RECTANGLE_FRACTION = 0.5
SUPERSAMPLE = 4  # sub-pixels per side, so strokes are anti-aliased and moments are sub-pixel accurate


@dataclasses.dataclass(frozen=True)
class SplitSizes:
    """How many images each disjoint split gets: A trains the generator, C the classifiers,
    B is the reference and B_prime a second real set (the noise floor P_B' - P_B)."""

    A: int = 2000
    C: int = 1000
    B: int = 1000
    B_prime: int = 1000

    def validate(self, available: int | None = None) -> SplitSizes:
        for name in SPLITS:
            value = getattr(self, name)
            require(isinstance(value, int) and value > 0, "SplitSizes", name, value, "a positive int (an empty split is refused)")
        if available is not None:
            require(self.total <= available, "SplitSizes", "total", self.total,
                    f"at most {available} images (the data set's size), else the splits would overlap")
        return self

    @property
    def total(self) -> int:
        return sum(getattr(self, name) for name in SPLITS)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """images[split]: [n, side, side] float32 in [0, 1]; params[split]: render parameters
    (name -> [n] array) for Shapes16, empty for digits; indices[split]: rows of the source set."""

    name: str
    images: dict[str, np.ndarray]
    params: dict[str, dict[str, np.ndarray]]
    indices: dict[str, np.ndarray]


def sample_shapes16_params(num_images: int, seed: int) -> dict[str, np.ndarray]:
    """Render parameters, each [num_images]: size (major semi-axis, px), thickness (stroke, px),
    slant (major-axis angle, rad, image x right / y down), brightness, shape_class (0 ellipse, 1 rectangle)."""
    require(isinstance(num_images, int) and num_images > 0, "shapes16", "num_images", num_images, "a positive int")
    rng = np.random.default_rng(seed)
    bright = rng.random(num_images) < BRIGHT_FRACTION
    brightness = np.where(bright, rng.uniform(*BRIGHT_RANGE, num_images), rng.uniform(*DIM_RANGE, num_images))
    return {
        "size": rng.uniform(*SIZE_RANGE, num_images),
        "thickness": rng.uniform(*THICKNESS_RANGE, num_images),
        "slant": np.clip(rng.normal(0.0, SLANT_STD, num_images), -SLANT_LIMIT, SLANT_LIMIT),
        "brightness": brightness,
        "shape_class": (rng.random(num_images) < RECTANGLE_FRACTION).astype(np.int64),
    }


def _inside(u, v, major, minor, is_rectangle) -> np.ndarray:
    """Sub-pixels inside the filled ellipse or rectangle with these semi-axes (broadcast)."""
    ellipse = (u / major) ** 2 + (v / minor) ** 2 <= 1.0
    rectangle = (np.abs(u) <= major) & (np.abs(v) <= minor)
    return np.where(is_rectangle, rectangle, ellipse)


def render_shapes16(params: dict[str, np.ndarray], batch: int = 512) -> np.ndarray:
    """Outline of a rotated ellipse or rectangle per parameter row -> [n, 16, 16] float32 in [0, 1];
    each pixel is brightness times the stroke's coverage of it (SUPERSAMPLE^2 sub-pixels)."""
    num_images = params["size"].shape[0]
    fine = SHAPES16_SIDE * SUPERSAMPLE
    coords = (np.arange(fine) + 0.5) / SUPERSAMPLE - SHAPES16_SIDE / 2
    y, x = np.meshgrid(coords, coords, indexing="ij")
    images = np.empty((num_images, SHAPES16_SIDE, SHAPES16_SIDE), np.float32)
    for start in range(0, num_images, batch):
        rows = slice(start, start + batch)
        size, thick = params["size"][rows, None, None], params["thickness"][rows, None, None]
        cos, sin = np.cos(params["slant"][rows])[:, None, None], np.sin(params["slant"][rows])[:, None, None]
        u, v = x * cos + y * sin, -x * sin + y * cos  # coordinates along / across the major axis
        is_rectangle = params["shape_class"][rows, None, None] == 1
        outer = _inside(u, v, size + thick / 2, ASPECT * size + thick / 2, is_rectangle)
        inner = _inside(u, v, size - thick / 2, ASPECT * size - thick / 2, is_rectangle)
        stroke = outer & ~inner
        coverage = stroke.reshape(-1, SHAPES16_SIDE, SUPERSAMPLE, SHAPES16_SIDE, SUPERSAMPLE).mean(axis=(2, 4))
        images[rows] = coverage * params["brightness"][rows, None, None]
    return images


def split_indices(num_items: int, sizes: SplitSizes, seed: int) -> dict[str, np.ndarray]:
    """Disjoint index sets per split from one seeded permutation of range(num_items)."""
    sizes.validate(available=num_items)
    order = np.random.default_rng(seed).permutation(num_items)
    bounds = np.cumsum([0] + [getattr(sizes, name) for name in SPLITS])
    return {name: order[bounds[i] : bounds[i + 1]] for i, name in enumerate(SPLITS)}


def check_disjoint(indices: dict[str, np.ndarray]) -> None:
    """Raises ValueError naming the first pair of splits that share an item, or an empty split."""
    names = list(indices)
    for i, first in enumerate(names):
        require(len(indices[first]) > 0, "splits", first, "[]", "a non-empty index set")
        for second in names[i + 1 :]:
            shared = np.intersect1d(indices[first], indices[second])
            require(shared.size == 0, "splits", f"{first}&{second}", shared[:5].tolist(), "no shared items (disjoint splits)")


def load_digits_images() -> np.ndarray:
    """scikit-learn's 1797 8x8 digits, [1797, 8, 8] float32 scaled from 0..16 to [0, 1]."""
    from sklearn.datasets import load_digits

    return (load_digits().images / 16.0).astype(np.float32)


def load_dataset(name: str, sizes: SplitSizes = SplitSizes(), seed: int = 0) -> Dataset:
    """The named data set cut into the disjoint splits of `sizes`, reproducibly from `seed`."""
    require(name in DATASETS, "dataset", "name", name, f"one of {', '.join(DATASETS)}")
    if name == "shapes16":
        sizes.validate()
        all_params = sample_shapes16_params(sizes.total, seed)
        all_images = render_shapes16(all_params)
    else:
        all_images, all_params = load_digits_images(), {}
    indices = split_indices(all_images.shape[0], sizes, seed)
    check_disjoint(indices)
    images = {split: all_images[rows] for split, rows in indices.items()}
    params = {split: {key: value[rows] for key, value in all_params.items()} for split, rows in indices.items()}
    side = all_images.shape[1]
    for split, rows in indices.items():
        chex.assert_shape(images[split], (rows.shape[0], side, side))
        chex.assert_type(images[split], np.float32)
    return Dataset(name, images, params, indices)
