"""The systems FLAM (arXiv 2505.05335) is compared against, as small frozen configs saying which losses
of `audio.losses` are trained and how frame scores are read: G, S0, S1, FLAM and FLAM without L_CLIP."""

from __future__ import annotations

import dataclasses
import math

from jaxrl_suite.audio import losses
from jaxrl_suite.validation import require

# name -> (frame loss, default clip/frame/prior weights, frame score read at inference)
#   G             global InfoNCE only; frame scores are the cosine maps, (1 + cos) / 2
#   S0            SigLIP frame loss with one learned scalar scale and bias (bias trained by the frame loss)
#   S1            per-text alpha(t_k), beta(t_k), beta trained by the frame loss, no prior
#   flam          per-text alpha, beta with beta detached in L_SED and fitted by L_prior (logit adjustment)
#   flam_no_clip  flam with clip_weight 0
FRAME_LOSSES = ("none", "scalar", "per_text", "adjusted")
SYSTEMS = {
    "g": ("none", (losses.CLIP_WEIGHT, 0.0, 0.0), "cosine"),
    "s0": ("scalar", (losses.CLIP_WEIGHT, losses.SED_WEIGHT, 0.0), "sigmoid"),
    "s1": ("per_text", (losses.CLIP_WEIGHT, losses.SED_WEIGHT, 0.0), "sigmoid"),
    "flam": ("adjusted", (losses.CLIP_WEIGHT, losses.SED_WEIGHT, losses.PRIOR_WEIGHT), "unbiased"),
    "flam_no_clip": ("adjusted", (0.0, losses.SED_WEIGHT, losses.PRIOR_WEIGHT), "unbiased"),
}
INFERENCES = ("cosine", "sigmoid", "raw", "unbiased")  # raw = sigmoid(h) of a FLAM system, no prior removed


@dataclasses.dataclass(frozen=True)
class SystemConfig:
    """One system: `name` picks the frame loss and the inference; the weights scale
    L = clip_weight L_CLIP + frame_weight L_frame + prior_weight L_prior. Use `system(name)` for the presets."""

    name: str = "flam"
    clip_weight: float = losses.CLIP_WEIGHT
    frame_weight: float = losses.SED_WEIGHT
    prior_weight: float = losses.PRIOR_WEIGHT

    def __post_init__(self):
        require(self.name in SYSTEMS, "SystemConfig", "name", self.name, f"one of {list(SYSTEMS)}")
        for field in ("clip_weight", "frame_weight", "prior_weight"):
            value = getattr(self, field)
            require(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, "SystemConfig", field,
                    value, "a finite non-negative loss weight")
        # a weight nothing would read is refused rather than silently ignored
        if self.frame_loss == "none":
            require(self.frame_weight == 0, "SystemConfig", "frame_weight", self.frame_weight, f"0 for system {self.name!r} (no frame loss)")
        if self.frame_loss != "adjusted":
            require(self.prior_weight == 0, "SystemConfig", "prior_weight", self.prior_weight, f"0 for system {self.name!r} (no prior)")
        total = self.clip_weight + self.frame_weight + self.prior_weight
        require(total > 0, "SystemConfig", "clip_weight + frame_weight + prior_weight", total, "> 0 (at least one loss trained)")

    @property
    def frame_loss(self) -> str:
        return SYSTEMS[self.name][0]

    @property
    def inference(self) -> str:
        return SYSTEMS[self.name][2]


def system(name: str, **weights) -> SystemConfig:
    """The preset of `name` (its default weights), with any of clip_weight/frame_weight/prior_weight overridden."""
    require(name in SYSTEMS, "SystemConfig", "name", name, f"one of {list(SYSTEMS)}")
    clip_weight, frame_weight, prior_weight = SYSTEMS[name][1]
    defaults = {"clip_weight": clip_weight, "frame_weight": frame_weight, "prior_weight": prior_weight}
    for key in weights:
        require(key in defaults, "SystemConfig", "field", key, f"one of {list(defaults)}")
    return SystemConfig(name, **{**defaults, **weights})
