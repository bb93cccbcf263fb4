"""Scaled-down FLAM soundscape mixer: a background plus 1-4 events per 5 s clip, at most 3 overlapping,
with fragments, repeats, loudness shifts, 10 ms fades, and frame labels from each event's own loudness."""

from __future__ import annotations

import dataclasses

import chex
import numpy as np
from scipy.signal import lfilter

from jaxrl_suite.audio import framing, synth
from jaxrl_suite.validation import require


@dataclasses.dataclass(frozen=True)
class MixConfig:
    """Defaults: 16 kHz, 5 s, 160 ms frames (31 per clip), labels where the event's own frame RMS
    exceeds -45 dBFS; event levels -30..-12 dBFS RMS, each segment shifted by -6..+6 dB."""

    sample_rate: int = framing.SAMPLE_RATE
    clip_s: float = framing.CLIP_S
    hop: int = framing.HOP
    max_events: int = 4
    max_overlap: int = 3
    fade_ms: float = 10.0
    label_threshold_db: float = -45.0
    level_db: tuple[float, float] = (-30.0, -12.0)
    segment_shift_db: float = 6.0
    background_db: float = -55.0
    fragment_prob: float = 0.3
    repeat_prob: float = 0.2
    placement_tries: int = 50

    def __post_init__(self):
        require(self.sample_rate > 0, "MixConfig", "sample_rate", self.sample_rate, "a positive rate in Hz")
        require(self.clip_s > 0, "MixConfig", "clip_s", self.clip_s, "a positive duration in seconds")
        framing.num_frames(self.num_samples, self.hop)
        require(1 <= self.max_events, "MixConfig", "max_events", self.max_events, "at least 1")
        require(1 <= self.max_overlap, "MixConfig", "max_overlap", self.max_overlap, "at least 1")
        require(self.fade_ms >= 0, "MixConfig", "fade_ms", self.fade_ms, "a non-negative duration in ms")
        require(self.level_db[0] <= self.level_db[1], "MixConfig", "level_db", self.level_db, "(low, high) with low <= high")
        for name in ("fragment_prob", "repeat_prob"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, "MixConfig", name, value, "a probability in [0, 1]")

    @property
    def num_samples(self) -> int:
        return int(round(self.clip_s * self.sample_rate))

    @property
    def num_frames(self) -> int:
        return self.num_samples // self.hop

    @property
    def fade_samples(self) -> int:
        return int(round(self.fade_ms * self.sample_rate / 1000.0))


@dataclasses.dataclass(frozen=True)
class Segment:
    """Source samples [source_start, source_start + length) placed at clip sample `start`, shifted by gain_db."""

    start: int
    source_start: int
    length: int
    gain_db: float = 0.0

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclasses.dataclass(frozen=True)
class Event:
    """One sound (family, register, params) at RMS level_db dBFS, heard in one or more segments."""

    family: str
    register: str
    params: dict
    level_db: float
    segments: tuple[Segment, ...]


@dataclasses.dataclass(frozen=True)
class Clip:
    """waveform [num_samples]; event_signals [E, num_samples] (each event alone); event_labels [E, F] bool."""

    waveform: np.ndarray
    events: tuple[Event, ...]
    event_signals: np.ndarray
    event_labels: np.ndarray


def fade_envelope(length: int, fade_samples: int) -> np.ndarray:
    """Linear ramps: sample i of the first fade_samples has gain i / fade_samples (mirrored at the end)."""
    require(length >= 1, "mixer", "length", length, "at least one sample")
    env = np.ones(length, dtype=np.float64)
    fade = min(fade_samples, length // 2)
    if fade > 0:
        ramp = np.arange(fade, dtype=np.float64) / fade
        env[:fade] = ramp
        env[length - fade :] = ramp[::-1]
    return env


def frame_db(signal: np.ndarray, hop: int) -> np.ndarray:
    """RMS in dBFS of each whole frame [k * hop, (k + 1) * hop) of a 1-D signal; silence is -inf."""
    signal = np.asarray(signal, dtype=np.float64)
    chex.assert_rank(signal, 1)
    frames = framing.num_frames(signal.size, hop)
    rms = np.sqrt(np.mean(signal[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(rms)


def frame_labels(signal: np.ndarray, hop: int, threshold_db: float) -> np.ndarray:
    """[num_frames] bool: the frame RMS of this event's own signal is above threshold_db dBFS."""
    return frame_db(signal, hop) > threshold_db


def render_event(source: np.ndarray, event: Event, config: MixConfig) -> np.ndarray:
    """The event alone in the clip: the source scaled to level_db RMS, each segment faded and shifted."""
    source = np.asarray(source, dtype=np.float64)
    chex.assert_rank(source, 1)
    rms = np.sqrt(np.mean(source**2))
    require(rms > 0, "mixer", "source", "silent", "a source with nonzero RMS")
    scaled = source / rms * 10.0 ** (event.level_db / 20.0)
    out = np.zeros(config.num_samples, dtype=np.float64)
    for seg in event.segments:
        require(0 <= seg.start and seg.end <= config.num_samples, "mixer", "segment", seg, f"inside [0, {config.num_samples}]")
        piece = scaled[seg.source_start : seg.source_start + seg.length]
        require(piece.size == seg.length, "mixer", "segment.length", seg.length, f"within the source's {source.size} samples")
        out[seg.start : seg.end] += piece * fade_envelope(seg.length, config.fade_samples) * 10.0 ** (seg.gain_db / 20.0)
    return out.astype(np.float32)


def background(rng: np.random.Generator, config: MixConfig) -> np.ndarray:
    """Brown-ish noise (white noise through a one-pole low-pass) at config.background_db RMS."""
    x = lfilter([1.0], [1.0, -0.98], rng.standard_normal(config.num_samples))
    x -= x.mean()
    return (x / np.sqrt(np.mean(x**2)) * 10.0 ** (config.background_db / 20.0)).astype(np.float32)


def _pattern(rng: np.random.Generator, length: int, config: MixConfig) -> list[tuple[int, int, int]]:
    """(offset from onset, source_start, length) pieces: one piece, or two with a 0.1-0.5 s gap (fragmented)."""
    if rng.uniform() < config.fragment_prob and length >= 4 * max(config.fade_samples, 1):
        cut = int(length * rng.uniform(0.3, 0.7))
        gap = int(rng.uniform(0.1, 0.5) * config.sample_rate)
        return [(0, 0, cut), (cut + gap, cut, length - cut)]
    return [(0, 0, length)]


def _place(rng, pattern, active, own, config) -> int | None:
    """An onset where the pattern fits in the clip, keeps < max_overlap other segments active at every
    sample, and does not overlap this event's own earlier segments; None after placement_tries tries."""
    span = max(off + n for off, _, n in pattern)
    if span > config.num_samples:
        return None
    for _ in range(config.placement_tries):
        onset = int(rng.integers(0, config.num_samples - span + 1))
        ok = all(
            active[onset + off : onset + off + n].max() < config.max_overlap and not own[onset + off : onset + off + n].any()
            for off, _, n in pattern
        )
        if ok:
            return onset
    return None


def layout(rng: np.random.Generator, durations_s, config: MixConfig):
    """Segments for each requested event (shrinking it by 0.7x when it does not fit, dropped below 0.2 s):
    returns a list, per event, of its Segments (possibly empty = dropped)."""
    active = np.zeros(config.num_samples, dtype=np.int32)
    result = []
    for duration in durations_s:
        require(duration > 0, "mixer", "duration_s", duration, "a positive duration in seconds")
        length = min(int(duration * config.sample_rate), config.num_samples)
        own = np.zeros(config.num_samples, dtype=bool)
        segments: list[Segment] = []
        occurrences = 2 if rng.uniform() < config.repeat_prob else 1
        for occurrence in range(occurrences):
            n = length
            while n >= int(0.2 * config.sample_rate):
                pattern = _pattern(rng, n, config)
                onset = _place(rng, pattern, active, own, config)
                if onset is not None:
                    for off, src, m in pattern:
                        shift = float(rng.uniform(-config.segment_shift_db, config.segment_shift_db))
                        segments.append(Segment(onset + off, src, m, shift))
                        own[onset + off : onset + off + m] = True
                    break
                n = int(n * 0.7)
            if occurrence == 0 and not segments:
                break
        for seg in segments:
            active[seg.start : seg.end] += 1
        result.append(tuple(segments))
    return result


def render_clip(rng: np.random.Generator, picks, config: MixConfig = MixConfig()) -> Clip:
    """picks: up to max_events (family, register, duration_s); events that cannot be placed are dropped."""
    require(1 <= len(picks) <= config.max_events, "mixer", "len(picks)", len(picks), f"1..{config.max_events} events")
    layouts = layout(rng, [p[2] for p in picks], config)
    events, signals = [], []
    for (family, register, _), segments in zip(picks, layouts, strict=True):
        if not segments:
            continue
        params = synth.sample_params(rng, family, register)
        source_len = max(s.source_start + s.length for s in segments)
        source = synth.render(rng, family, source_len / config.sample_rate, config.sample_rate, params)
        source = np.pad(source, (0, max(0, source_len - source.size)))
        event = Event(family, register, params, float(rng.uniform(*config.level_db)), segments)
        events.append(event)
        signals.append(render_event(source, event, config))
    event_signals = np.stack(signals) if signals else np.zeros((0, config.num_samples), np.float32)
    waveform = background(rng, config) + event_signals.sum(axis=0)
    labels = np.stack([frame_labels(s, config.hop, config.label_threshold_db) for s in event_signals]) if signals else np.zeros((0, config.num_frames), bool)
    chex.assert_shape(labels, (len(events), config.num_frames))
    return Clip(waveform.astype(np.float32), tuple(events), event_signals, labels)


def family_labels(clip: Clip, families) -> np.ndarray:
    """[len(families), num_frames] bool: the OR of the event labels of each family."""
    out = np.zeros((len(families), clip.event_labels.shape[1]), dtype=bool)
    for event, labels in zip(clip.events, clip.event_labels, strict=True):
        out[list(families).index(event.family)] |= labels
    return out


def max_overlap(clip: Clip) -> int:
    """The most segments sounding at one sample, from the events' segment spans."""
    active = np.zeros(clip.waveform.size, dtype=np.int32)
    for event in clip.events:
        for seg in event.segments:
            active[seg.start : seg.end] += 1
    return int(active.max())
