"""The FLAM scenario: which events a clip holds (label imbalance, a train-only co-occurrence, held-out
(register, family) pairs for the open-vocabulary test) and each event's template caption."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxrl_suite.audio import mixer, synth
from jaxrl_suite.validation import require

SPLITS = ("train", "test")
FAMILIES = tuple(synth.FAMILIES)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Defaults: band_noise is frequent (in 70% of clips, 2-4 s long), bell is rare (15%, 0.5-1 s);
    tone follows click_train with probability 0.9 in train (0.1 without it) but is independent at
    test (0.3 either way); the held-out (register, family) pairs never appear in train."""

    frequent: str = "band_noise"
    frequent_prob: float = 0.7
    frequent_s: tuple[float, float] = (2.0, 4.0)
    rare: str = "bell"
    rare_prob: float = 0.15
    rare_s: tuple[float, float] = (0.5, 1.0)
    cause: str = "click_train"
    cause_prob: float = 0.3
    effect: str = "tone"
    effect_given_cause_train: float = 0.9
    effect_without_cause_train: float = 0.1
    effect_prob_test: float = 0.3
    filler: tuple[str, ...] = ("chirp", "harmonic", "am_fm")
    other_s: tuple[float, float] = (0.5, 1.5)
    held_out: tuple[tuple[str, str], ...] = (("high", "chirp"), ("low", "am_fm"), ("low", "harmonic"))

    def __post_init__(self):
        named = [self.frequent, self.rare, self.cause, self.effect, *self.filler]
        for family in named:
            require(family in FAMILIES, "Scenario", "family", family, f"one of {list(FAMILIES)}")
        require(len(set(named)) == len(named), "Scenario", "families", named, "distinct roles")
        for register, family in self.held_out:
            require(register in synth.REGISTERS and family in FAMILIES, "Scenario", "held_out", (register, family), "(register, family) pairs")


def _register(rng: np.random.Generator, family: str, split: str, scenario: Scenario) -> str:
    register = synth.REGISTERS[int(rng.integers(2))]
    if split == "train" and (register, family) in scenario.held_out:
        register = "high" if register == "low" else "low"
    return register


def sample_scene(rng: np.random.Generator, split: str, scenario: Scenario = Scenario(), max_events: int = 4):
    """Up to max_events (family, register, duration_s) picks for one clip of `split`."""
    require(split in SPLITS, "captions", "split", split, f"one of {list(SPLITS)}")
    s = scenario
    chosen: list[tuple[str, tuple[float, float]]] = []
    if rng.uniform() < s.frequent_prob:
        chosen.append((s.frequent, s.frequent_s))
    if rng.uniform() < s.rare_prob:
        chosen.append((s.rare, s.rare_s))
    cause = rng.uniform() < s.cause_prob
    if cause:
        chosen.append((s.cause, s.other_s))
    if split == "train":
        effect_prob = s.effect_given_cause_train if cause else s.effect_without_cause_train
    else:
        effect_prob = s.effect_prob_test
    if rng.uniform() < effect_prob:
        chosen.append((s.effect, s.other_s))
    target = max(int(rng.integers(1, max_events + 1)), 1)
    for _ in range(max(0, target - len(chosen))):
        chosen.append((s.filler[int(rng.integers(len(s.filler)))], s.other_s))
    chosen = chosen[:max_events]
    return [(f, _register(rng, f, split, s), float(rng.uniform(*span))) for f, span in chosen]


def caption(event: mixer.Event) -> str:
    """Template caption, e.g. 'a high rising chirp', 'a low bell'."""
    words = ["a", event.register]
    if event.family == "chirp":
        words.append(event.params["direction"])
    words.append(synth.NOUNS[event.family])
    return " ".join(words)


def check_caption(text: str) -> str:
    """A caption must be a non-empty string."""
    require(isinstance(text, str) and text.strip() != "", "captions", "caption", text, "a non-empty string")
    return text


def make_clip(rng: np.random.Generator, split: str, scenario: Scenario = Scenario(), config: mixer.MixConfig = mixer.MixConfig()):
    """(Clip, captions per event) for one clip of `split`."""
    clip = mixer.render_clip(rng, sample_scene(rng, split, scenario, config.max_events), config)
    return clip, [check_caption(caption(e)) for e in clip.events]


def make_split(seed: int, num_clips: int, split: str, scenario: Scenario = Scenario(), config: mixer.MixConfig = mixer.MixConfig()):
    """num_clips (Clip, captions) pairs, seeded; train and test seeds are kept apart by the split name."""
    require(num_clips >= 1, "captions", "num_clips", num_clips, "at least 1")
    require(split in SPLITS, "captions", "split", split, f"one of {list(SPLITS)}")
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    return [make_clip(rng, split, scenario, config) for _ in range(num_clips)]


def frame_rates(clips, families=FAMILIES) -> np.ndarray:
    """[len(families)] fraction of all frames (over all clips) in which each family is labelled present."""
    total = sum(mixer.family_labels(c, families).astype(np.float64) for c, _ in clips)
    return total.sum(axis=1) / (len(clips) * clips[0][0].event_labels.shape[1])


def cooccurrence(clips, cause: str, effect: str) -> tuple[float, float]:
    """(P(effect in clip | cause in clip), P(effect in clip | cause absent)) over the clips."""
    has = np.array([[any(e.family == f for e in c.events) for f in (cause, effect)] for c, _ in clips])
    with_cause, without = has[has[:, 0], 1], has[~has[:, 0], 1]
    return float(with_cause.mean()), float(without.mean())
