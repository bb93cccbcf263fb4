"""Oracle attribute measurements from pixels for the bias-shift study (arXiv 2506.09106):
ink mass, size, slant and shear from intensity moments, stroke thickness, brightness and a shape score."""

from __future__ import annotations

import chex
import numpy as np
from scipy import ndimage

from jaxrl_suite.validation import require

ATTRIBUTES = ("ink_mass", "size", "slant", "thickness", "brightness", "shape_score")
EXTRA_ATTRIBUTES = ("shear",)  # measurable on any image, not a Shapes16 render parameter
UPSAMPLE = 4  # thickness is measured on a bilinear 4x upsampling, as a 16x16 stroke is 1-2 px wide


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float64)
    chex.assert_rank(images, 3)
    require(images.shape[0] > 0, "attributes", "images.shape[0]", images.shape[0], "at least one image")
    return images


def _moments(images: np.ndarray):
    """Intensity-weighted centred second moments (mu20 along x, mu02 along y, mu11), each [n]."""
    n, height, width = images.shape
    y, x = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    mass = images.sum(axis=(1, 2)) + 1e-12
    cx = (images * x).sum(axis=(1, 2)) / mass
    cy = (images * y).sum(axis=(1, 2)) / mass
    dx, dy = x[None] - cx[:, None, None], y[None] - cy[:, None, None]
    mu20 = (images * dx**2).sum(axis=(1, 2)) / mass
    mu02 = (images * dy**2).sum(axis=(1, 2)) / mass
    mu11 = (images * dx * dy).sum(axis=(1, 2)) / mass
    return mass, dx, dy, mu20, mu02, mu11


def ink_mass(images) -> np.ndarray:
    """Sum of pixel intensities per image, [n]."""
    return _check_images(images).sum(axis=(1, 2))


def size(images) -> np.ndarray:
    """Radius of gyration sqrt(mu20 + mu02) in pixels, [n]: proportional to the shape's extent
    (for Shapes16 about 0.7-0.9 times the major semi-axis, depending on the shape class)."""
    _, _, _, mu20, mu02, _ = _moments(_check_images(images))
    return np.sqrt(mu20 + mu02)


def slant(images) -> np.ndarray:
    """Angle of the major axis of the moment covariance, radians in (-pi/2, pi/2], [n]
    (x right, y down, so a positive angle turns the x axis towards +y)."""
    _, _, _, mu20, mu02, mu11 = _moments(_check_images(images))
    return 0.5 * np.arctan2(2.0 * mu11, mu20 - mu02)


def shear(images) -> np.ndarray:
    """mu11 / mu02, the x shift per pixel of y, [n]: the slant of upright strokes such as digits,
    whose major axis lies near +-pi/2 where `slant` wraps around."""
    _, _, _, _, mu02, mu11 = _moments(_check_images(images))
    return mu11 / (mu02 + 1e-12)


def brightness(images) -> np.ndarray:
    """Brightest pixel per image, [n]: the stroke's intensity where it covers a whole pixel."""
    return _check_images(images).max(axis=(1, 2))


def thickness(images) -> np.ndarray:
    """Stroke width in pixels, [n]: 2 * area / perimeter of the half-maximum mask of a bilinear
    UPSAMPLE-x upsampling (a strip of length L and width w has area L*w and perimeter ~2L); the
    perimeter counts mask pixels removed by one binary erosion."""
    images = _check_images(images)
    widths = np.empty(images.shape[0])
    for i, image in enumerate(images):
        fine = ndimage.zoom(image, UPSAMPLE, order=1)
        mask = fine >= 0.5 * image.max()
        boundary = mask & ~ndimage.binary_erosion(mask)
        widths[i] = 2.0 * mask.sum() / max(int(boundary.sum()), 1) / UPSAMPLE
    return widths


def shape_score(images) -> np.ndarray:
    """E|u v| / sqrt(E u^2 E v^2) in the frame of the moment axes, [n]: about 2/pi = 0.64 for a thin
    ellipse outline and 0.76 for a thin rectangle outline with Shapes16's aspect (ink at the corners)."""
    images = _check_images(images)
    mass, dx, dy, mu20, mu02, mu11 = _moments(images)
    angle = 0.5 * np.arctan2(2.0 * mu11, mu20 - mu02)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    mean = lambda field: (images * field).sum(axis=(1, 2)) / mass  # noqa: E731
    return mean(np.abs(u * v)) / np.sqrt(mean(u**2) * mean(v**2) + 1e-12)


MEASURES = {
    "ink_mass": ink_mass,
    "size": size,
    "slant": slant,
    "thickness": thickness,
    "brightness": brightness,
    "shape_score": shape_score,
    "shear": shear,
}


def measure(images, names=ATTRIBUTES) -> dict[str, np.ndarray]:
    """Each named oracle attribute of images [n, h, w] -> name -> [n] float64."""
    for name in names:
        require(name in MEASURES, "attributes", "name", name, f"one of {', '.join(MEASURES)}")
    out = {name: MEASURES[name](images) for name in names}
    for values in out.values():
        chex.assert_shape(values, (np.asarray(images).shape[0],))
    return out
