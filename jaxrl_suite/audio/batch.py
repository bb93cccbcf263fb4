"""Turns rendered clips and their captions into FLAM loss inputs: log-mel features [A, F, 64], the
batch's distinct captions as bytes [K, L], frame labels [A, K, F], and one clip caption per clip."""

from __future__ import annotations

import dataclasses

import chex
import numpy as np

from jaxrl_suite.audio import captions as captions_lib
from jaxrl_suite.audio import features
from jaxrl_suite.validation import require


@dataclasses.dataclass(frozen=True)
class Batch:
    """feats [A, F, 64] f32; texts/text_mask [K, L]; labels [A, K, F] bool; clip_texts/clip_mask [A, L]."""

    feats: np.ndarray
    texts: np.ndarray
    text_mask: np.ndarray
    labels: np.ndarray
    clip_texts: np.ndarray
    clip_mask: np.ndarray
    captions: tuple[str, ...]


def encode_bytes(texts, max_len: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """([N, max_len] int32 UTF-8 bytes, zero-padded and cut at max_len; [N, max_len] bool mask)."""
    require(max_len >= 1, "batch", "max_len", max_len, "at least 1")
    ids = np.zeros((len(texts), max_len), np.int32)
    for i, text in enumerate(texts):
        raw = list(captions_lib.check_caption(text).encode("utf-8"))[:max_len]
        ids[i, : len(raw)] = raw
    return ids, ids > 0


def make_batch(clips, max_len: int = 48) -> Batch:
    """clips: [(Clip, captions)], at least 2 (InfoNCE needs K >= 2); every text is valid against every clip."""
    require(len(clips) >= 2, "batch", "len(clips)", len(clips), "at least 2 clips")
    names = tuple(sorted({c for _, caps in clips for c in caps}))
    num_frames = clips[0][0].event_labels.shape[1]
    labels = np.zeros((len(clips), len(names), num_frames), bool)
    for a, (clip, caps) in enumerate(clips):
        for cap, event_labels in zip(caps, clip.event_labels, strict=True):
            labels[a, names.index(cap)] |= event_labels
    feats = np.stack([np.asarray(features.log_mel(clip.waveform)) for clip, _ in clips])
    texts, text_mask = encode_bytes(names, max_len)
    clip_texts, clip_mask = encode_bytes([" and ".join(caps) for _, caps in clips], max_len * 4)
    chex.assert_shape(feats, (len(clips), num_frames, features.NUM_MELS))
    return Batch(feats.astype(np.float32), texts, text_mask, labels, clip_texts, clip_mask, names)
