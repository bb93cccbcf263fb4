"""Seeded numpy sound-event families (tone, chirp, band-limited noise, harmonic stack, click train,
AM/FM tone, bell): each fn(rng, duration_s, sample_rate, params) -> float32 waveform with peak 1."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import chex
import numpy as np

from jaxrl_suite.validation import require

REGISTERS = ("low", "high")  # the attribute word every family takes: its frequency register
REGISTER_HZ = {"low": (200.0, 600.0), "high": (1500.0, 4000.0)}
DIRECTIONS = ("rising", "falling")  # chirps only


def _time(duration_s: float, sample_rate: int) -> np.ndarray:
    require(duration_s > 0, "synth", "duration_s", duration_s, "a positive duration in seconds")
    require(sample_rate > 0, "synth", "sample_rate", sample_rate, "a positive rate in Hz")
    n = int(round(duration_s * sample_rate))
    require(n >= 1, "synth", "duration_s", duration_s, f"at least one sample at {sample_rate} Hz")
    return np.arange(n, dtype=np.float64) / sample_rate


def _peak_normalise(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x))
    out = (x / peak if peak > 0 else x).astype(np.float32)
    chex.assert_rank(out, 1)
    return out


def tone(rng, duration_s, sample_rate, params):
    """Sine at params['freq'] Hz with a random phase."""
    t = _time(duration_s, sample_rate)
    return _peak_normalise(np.sin(2 * np.pi * params["freq"] * t + rng.uniform(0, 2 * np.pi)))


def chirp(rng, duration_s, sample_rate, params):
    """Linear sweep from params['f0'] to params['f1'] Hz."""
    t = _time(duration_s, sample_rate)
    f0, f1 = params["f0"], params["f1"]
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * duration_s))
    return _peak_normalise(np.sin(phase + rng.uniform(0, 2 * np.pi)))


def band_noise(rng, duration_s, sample_rate, params):
    """White noise masked in the frequency domain to [params['low_hz'], params['high_hz']]."""
    t = _time(duration_s, sample_rate)
    spectrum = np.fft.rfft(rng.standard_normal(t.size))
    freqs = np.fft.rfftfreq(t.size, 1.0 / sample_rate)
    spectrum[(freqs < params["low_hz"]) | (freqs > params["high_hz"])] = 0.0
    return _peak_normalise(np.fft.irfft(spectrum, n=t.size))


def harmonic(rng, duration_s, sample_rate, params):
    """params['num_harmonics'] harmonics of params['f0'] with 1/k amplitudes, below Nyquist."""
    t = _time(duration_s, sample_rate)
    x = np.zeros_like(t)
    for k in range(1, int(params["num_harmonics"]) + 1):
        if k * params["f0"] < sample_rate / 2:
            x += np.sin(2 * np.pi * k * params["f0"] * t + rng.uniform(0, 2 * np.pi)) / k
    return _peak_normalise(x)


def click_train(rng, duration_s, sample_rate, params):
    """2 ms decaying noise bursts every 1 / params['rate_hz'] s, starting at t = 0."""
    t = _time(duration_s, sample_rate)
    x = np.zeros_like(t)
    burst = int(0.002 * sample_rate)
    envelope = np.exp(-np.arange(burst) / (burst / 4))
    for start in np.arange(0, t.size, sample_rate / params["rate_hz"]).astype(int):
        stop = min(start + burst, t.size)
        x[start:stop] += rng.standard_normal(stop - start) * envelope[: stop - start]
    return _peak_normalise(x)


def am_fm(rng, duration_s, sample_rate, params):
    """Carrier params['freq'] with 80% AM at params['am_hz'] and FM of params['fm_depth_hz'] at params['fm_hz']."""
    t = _time(duration_s, sample_rate)
    fm = params["fm_depth_hz"] / params["fm_hz"] * np.sin(2 * np.pi * params["fm_hz"] * t)
    am = 1.0 + 0.8 * np.sin(2 * np.pi * params["am_hz"] * t)
    return _peak_normalise(am * np.sin(2 * np.pi * params["freq"] * t + fm + rng.uniform(0, 2 * np.pi)))


BELL_PARTIALS = (1.0, 2.76, 5.40, 8.93)


def bell(rng, duration_s, sample_rate, params):
    """Inharmonic partials of params['freq'] (ratios BELL_PARTIALS), decaying with time constant params['decay_s']."""
    t = _time(duration_s, sample_rate)
    x = np.zeros_like(t)
    for i, ratio in enumerate(BELL_PARTIALS):
        if ratio * params["freq"] < sample_rate / 2:
            x += np.sin(2 * np.pi * ratio * params["freq"] * t + rng.uniform(0, 2 * np.pi)) / (i + 1)
    return _peak_normalise(x * np.exp(-t / params["decay_s"]))


FAMILIES: Mapping[str, Callable] = {
    "tone": tone,
    "chirp": chirp,
    "band_noise": band_noise,
    "harmonic": harmonic,
    "click_train": click_train,
    "am_fm": am_fm,
    "bell": bell,
}
NOUNS = {
    "tone": "tone",
    "chirp": "chirp",
    "band_noise": "noise",
    "harmonic": "harmonic hum",
    "click_train": "clicking",
    "am_fm": "warbling tone",
    "bell": "bell",
}


def sample_params(rng: np.random.Generator, family: str, register: str) -> dict:
    """Random parameters of `family` in frequency `register` ('low' or 'high')."""
    require(family in FAMILIES, "synth", "family", family, f"one of {sorted(FAMILIES)}")
    require(register in REGISTERS, "synth", "register", register, f"one of {list(REGISTERS)}")
    lo, hi = REGISTER_HZ[register]
    f = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if family == "chirp":
        direction = DIRECTIONS[int(rng.integers(2))]
        other = f * (2.0 if direction == "rising" else 0.5)
        return {"f0": f, "f1": other, "direction": direction}
    if family == "band_noise":
        return {"low_hz": f / 1.5, "high_hz": f * 1.5}
    if family == "harmonic":
        return {"f0": f / 2, "num_harmonics": int(rng.integers(3, 7))}
    if family == "click_train":
        return {"rate_hz": float(rng.uniform(8.0, 20.0)) * (1.0 if register == "low" else 2.0)}
    if family == "am_fm":
        return {"freq": f, "am_hz": float(rng.uniform(2, 8)), "fm_hz": float(rng.uniform(2, 6)), "fm_depth_hz": f * 0.05}
    if family == "bell":
        return {"freq": f, "decay_s": float(rng.uniform(0.3, 0.6))}
    return {"freq": f}


def render(rng: np.random.Generator, family: str, duration_s: float, sample_rate: int, params: dict) -> np.ndarray:
    """FAMILIES[family](rng, duration_s, sample_rate, params), with the family name checked."""
    require(family in FAMILIES, "synth", "family", family, f"one of {sorted(FAMILIES)}")
    return FAMILIES[family](rng, duration_s, sample_rate, params)
