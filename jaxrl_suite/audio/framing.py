"""The one time grid shared by labels and features: 16 kHz audio, 5 s clips, 2560-sample (160 ms)
frames, so a 5 s clip has 80000 // 2560 = 31 frames (the last 640 samples belong to no frame)."""

from __future__ import annotations

from jaxrl_suite.validation import require

SAMPLE_RATE = 16_000
CLIP_S = 5.0
HOP = 2560  # samples per frame; frame k covers samples [k * HOP, (k + 1) * HOP)
CLIP_SAMPLES = int(SAMPLE_RATE * CLIP_S)
NUM_FRAMES = CLIP_SAMPLES // HOP  # 31


def num_frames(num_samples: int, hop: int = HOP) -> int:
    """Whole frames in `num_samples` samples; a clip shorter than one frame is refused."""
    require(hop > 0, "framing", "hop", hop, "a positive number of samples")
    require(num_samples >= hop, "framing", "num_samples", num_samples, f"at least one frame ({hop} samples)")
    return num_samples // hop
