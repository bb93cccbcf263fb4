"""64-bin log-mel front end in JAX on the shared frame grid: each 2560-sample frame is Hann-windowed,
rfft'd (jnp.fft.rfft) and pooled by a numpy-built HTK mel filterbank; output [num_frames, 64] float32 dB."""

from __future__ import annotations

import functools

import chex
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.audio import framing
from jaxrl_suite.validation import require

NUM_MELS = 64
FMIN_HZ = 50.0
LOG_FLOOR = 1e-10


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(num_mels: int = NUM_MELS, n_fft: int = framing.HOP, sample_rate: int = framing.SAMPLE_RATE,
                   fmin: float = FMIN_HZ, fmax: float | None = None) -> np.ndarray:
    """[num_mels, n_fft // 2 + 1] float32 triangles with peak 1, centres evenly spaced in HTK mel
    between fmin and fmax (default Nyquist)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    require(num_mels >= 1, "features", "num_mels", num_mels, "at least 1")
    require(0 <= fmin < fmax <= sample_rate / 2, "features", "fmin, fmax", (fmin, fmax), f"0 <= fmin < fmax <= {sample_rate / 2}")
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), num_mels + 2))
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (centre - lo)
    down = (hi - freqs[None]) / (hi - centre)
    bank = np.maximum(0.0, np.minimum(up, down)).astype(np.float32)
    require(bool((bank.sum(axis=1) > 0).all()), "features", "num_mels", num_mels, f"few enough that every filter covers an FFT bin of {n_fft}")
    return bank


def mel_centres_hz(num_mels: int = NUM_MELS, sample_rate: int = framing.SAMPLE_RATE, fmin: float = FMIN_HZ) -> np.ndarray:
    """[num_mels] centre frequency in Hz of each filter of mel_filterbank (fmax = Nyquist)."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(sample_rate / 2), num_mels + 2))[1:-1]


def log_mel(waveform, hop: int = framing.HOP, sample_rate: int = framing.SAMPLE_RATE, num_mels: int = NUM_MELS) -> jnp.ndarray:
    """[num_frames, num_mels] float32: 10 log10(mel power + 1e-10) of frames [k * hop, (k + 1) * hop)."""
    waveform = jnp.asarray(waveform, dtype=jnp.float32)
    chex.assert_rank(waveform, 1)
    frames = framing.num_frames(int(waveform.shape[0]), hop)
    framed = waveform[: frames * hop].reshape(frames, hop) * jnp.asarray(np.hanning(hop), jnp.float32)
    power = jnp.abs(jnp.fft.rfft(framed, axis=-1)) ** 2
    mel = power @ jnp.asarray(mel_filterbank(num_mels, hop, sample_rate)).T
    out = 10.0 * jnp.log10(mel + LOG_FLOOR)
    chex.assert_shape(out, (frames, num_mels))
    chex.assert_type(out, jnp.float32)
    return out
