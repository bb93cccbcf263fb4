"""Attribute classifiers for the bias-shift study (arXiv 2506.09106): an oracle threshold, logistic
regression and kNN on pixels, each trained on split C to predict "attribute above threshold"."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import chex
import numpy as np

from jaxrl_suite.bias_shift import attributes
from jaxrl_suite.validation import require

CLASSIFIERS = ("oracle", "logreg", "knn")


@dataclasses.dataclass(frozen=True)
class ThresholdClassifier:
    """predict(images [n, h, w]) -> [n] bool, trained for `attribute > threshold`."""

    kind: str
    attribute: str
    threshold: float
    predict: Callable[[np.ndarray], np.ndarray]


def _flat(images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    chex.assert_rank(images, 3)
    return images.reshape(images.shape[0], -1)


def train_classifier(kind: str, attribute: str, threshold: float, train_images, seed: int = 0, knn_neighbours: int = 15) -> ThresholdClassifier:
    """A classifier of `attribute > threshold` fitted on train_images (split C), labelled by the oracle."""
    require(kind in CLASSIFIERS, "classifier", "kind", kind, f"one of {', '.join(CLASSIFIERS)}")
    require(attribute in attributes.MEASURES, "classifier", "attribute", attribute, f"one of {', '.join(attributes.MEASURES)}")
    measure = attributes.MEASURES[attribute]
    if kind == "oracle":
        return ThresholdClassifier(kind, attribute, threshold, lambda images: measure(images) > threshold)
    labels = measure(train_images) > threshold
    require(0 < labels.sum() < labels.size, "classifier", "threshold", threshold,
            "a threshold with training images on both sides of it")
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    if kind == "logreg":
        model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    else:
        model = KNeighborsClassifier(n_neighbors=knn_neighbours)
    model.fit(_flat(train_images), labels)
    return ThresholdClassifier(kind, attribute, threshold, lambda images: model.predict(_flat(images)).astype(bool))


def accuracy(classifier: ThresholdClassifier, images) -> float:
    """Fraction of images on which the classifier agrees with the oracle label."""
    truth = attributes.MEASURES[classifier.attribute](images) > classifier.threshold
    predicted = classifier.predict(images)
    chex.assert_equal_shape([truth, predicted])
    return float(np.mean(truth == predicted))
