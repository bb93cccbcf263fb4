"""FLAM data and loss core (issue 26): synth determinism and spectra, mixer limits, own-loudness labels
and fades, caption imbalance/co-occurrence/held-out pairs, the log-mel front end, and hand-computed losses."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl_suite.audio import batch, captions, encoders, features, framing, losses, mixer, synth

SR = framing.SAMPLE_RATE
NUM_CLIPS = 300  # rendered clips per split for the rate checks (about 4 s each split on the dev CPU)


@pytest.fixture(scope="module")
def train_clips():
    return captions.make_split(0, NUM_CLIPS, "train")


@pytest.fixture(scope="module")
def test_clips():
    return captions.make_split(0, NUM_CLIPS, "test")


# --- synth ---

@pytest.mark.parametrize("family", sorted(synth.FAMILIES))
def test_synth_is_seeded_float32_with_peak_one(family):
    params = synth.sample_params(np.random.default_rng(3), family, "low")
    a = synth.render(np.random.default_rng(7), family, 0.5, SR, params)
    b = synth.render(np.random.default_rng(7), family, 0.5, SR, params)
    c = synth.render(np.random.default_rng(8), family, 0.5, SR, params)
    assert a.dtype == np.float32 and a.shape == (SR // 2,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.max(np.abs(a)) == pytest.approx(1.0)


def test_tone_spectral_peak_is_its_frequency():
    x = synth.tone(np.random.default_rng(0), 1.0, SR, {"freq": 1234.5})  # 1 s -> 1 Hz bins
    peak_hz = np.argmax(np.abs(np.fft.rfft(x))) * SR / x.size
    assert abs(peak_hz - 1234.5) <= 1.0


def test_synth_refuses_bad_input():
    with pytest.raises(ValueError, match=r"^invalid synth.duration_s=0.0: expected a positive duration in seconds$"):
        synth.tone(np.random.default_rng(0), 0.0, SR, {"freq": 440.0})
    with pytest.raises(ValueError, match=r"invalid synth.family='gong': expected one of"):
        synth.render(np.random.default_rng(0), "gong", 1.0, SR, {})


# --- mixer ---

def test_frame_grid_is_31_frames_of_160ms():
    assert (framing.CLIP_SAMPLES, framing.HOP, framing.NUM_FRAMES) == (80000, 2560, 31)
    assert mixer.MixConfig().fade_samples == 160  # 10 ms at 16 kHz


def test_event_count_and_overlap_limits(train_clips, test_clips):
    for clip, _ in train_clips + test_clips:
        assert 1 <= len(clip.events) <= 4
        assert mixer.max_overlap(clip) <= 3
        sounding = (clip.event_signals != 0).sum(axis=0)  # from the rendered signals themselves
        assert sounding.max() <= 3
        assert clip.waveform.shape == (80000,) and clip.event_labels.shape == (len(clip.events), 31)


def test_fragments_repeats_and_loudness_shifts_occur(train_clips):
    segs = [len(e.segments) for c, _ in train_clips for e in c.events]
    shifts = [s.gain_db for c, _ in train_clips for e in c.events for s in e.segments]
    assert max(segs) >= 3 and np.mean(np.array(segs) > 1) > 0.2
    assert min(shifts) < -5 and max(shifts) > 5


def test_labels_of_a_hand_made_tone_from_1s_to_2s():
    config = mixer.MixConfig()
    source = synth.tone(np.random.default_rng(0), 1.0, SR, {"freq": 440.0})
    event = mixer.Event("tone", "low", {"freq": 440.0}, -20.0, (mixer.Segment(16000, 0, 16000),))
    labels = mixer.frame_labels(mixer.render_event(source, event, config), config.hop, config.label_threshold_db)
    # frame k covers [0.16 k, 0.16 (k + 1)) s: frames 6 ([0.96, 1.12)) to 12 ([1.92, 2.08)) touch the tone.
    # Stated tolerance: one frame at each edge (frames 5/6 and 12/13); here the edges are exact, as the
    # partly covered frames 6 (75%) and 12 (50%) are still at -21.2 and -23.0 dBFS, above -45.
    expected = np.zeros(31, bool)
    expected[6:13] = True
    assert labels[7:12].all() and not labels[:5].any() and not labels[14:].any()
    np.testing.assert_array_equal(labels, expected)


def test_labels_match_rendered_activity(train_clips):
    hop = framing.HOP
    for clip, _ in train_clips:
        for event, signal, labels in zip(clip.events, clip.event_signals, clip.event_labels, strict=True):
            touched = np.abs(signal[: 31 * hop]).reshape(31, hop).max(axis=1) > 0
            assert not (labels & ~touched).any()  # a positive frame always holds the event's own signal
            if event.family in ("tone", "chirp", "harmonic"):  # steady families: fully covered frames are loud
                for seg in event.segments:
                    inside = [k for k in range(31) if seg.start <= k * hop and (k + 1) * hop <= seg.end]
                    assert labels[inside].all()


def test_fades_are_10ms_linear_ramps():
    config = mixer.MixConfig()
    event = mixer.Event("tone", "low", {}, 0.0, (mixer.Segment(1000, 0, 3200),))
    out = mixer.render_event(np.ones(3200, np.float32), event, config)
    ramp = np.arange(160) / 160
    np.testing.assert_allclose(out[1000:1160], ramp, atol=1e-6)
    np.testing.assert_allclose(out[1160:4040], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[4040:4200], ramp[::-1], atol=1e-6)
    assert not out[:1000].any() and not out[4200:].any()


def test_mixer_refuses_bad_input():
    with pytest.raises(ValueError, match=r"^invalid framing.num_samples=1600: expected at least one frame \(2560 samples\)$"):
        mixer.MixConfig(clip_s=0.1)
    with pytest.raises(ValueError, match=r"^invalid mixer.len\(picks\)=5: expected 1..4 events$"):
        mixer.render_clip(np.random.default_rng(0), [("tone", "low", 1.0)] * 5)


# --- captions ---

def test_label_imbalance_rates(train_clips, test_clips):
    for clips in (train_clips, test_clips):
        rates = dict(zip(captions.FAMILIES, captions.frame_rates(clips), strict=True))
        assert 0.30 <= rates["band_noise"] <= 0.60
        assert 0.02 <= rates["bell"] <= 0.05


def test_cooccurrence_holds_in_train_and_is_independent_at_test(train_clips, test_clips):
    given, without = captions.cooccurrence(train_clips, "click_train", "tone")
    assert 0.85 <= given <= 0.95 and without <= 0.2
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        scenes = [captions.sample_scene(rng, split) for _ in range(20000)]
        has = np.array([[any(p[0] == f for p in s) for f in ("click_train", "tone")] for s in scenes])
        given, without = has[has[:, 0], 1].mean(), has[~has[:, 0], 1].mean()
        if split == "train":
            assert 0.88 <= given <= 0.92 and 0.08 <= without <= 0.12
        else:  # P(tone) = 0.3 either way: sd of the difference is about 0.007 at 20000 scenes
            assert abs(given - without) < 0.025 and abs(given - 0.3) < 0.02
    given, without = captions.cooccurrence(test_clips, "click_train", "tone")
    assert abs(given - without) < 0.15


def test_held_out_pairs_never_in_train(train_clips, test_clips):
    held = set(captions.Scenario().held_out)
    train_pairs = {(e.register, e.family) for c, _ in train_clips for e in c.events}
    rng = np.random.default_rng(2)
    train_pairs |= {(p[1], p[0]) for _ in range(5000) for p in captions.sample_scene(rng, "train")}
    assert not train_pairs & held
    assert held <= {(e.register, e.family) for c, _ in test_clips for e in c.events}


def test_caption_templates_and_refusal():
    event = mixer.Event("chirp", "high", {"direction": "rising"}, -20.0, ())
    assert captions.caption(event) == "a high rising chirp"
    assert captions.caption(mixer.Event("bell", "low", {}, -20.0, ())) == "a low bell"
    with pytest.raises(ValueError, match=r"^invalid captions.caption='': expected a non-empty string$"):
        captions.check_caption("")


# --- features ---

def test_log_mel_shape_and_tone_bin():
    centre = features.mel_centres_hz()[30]
    freq = round(centre / 6.25) * 6.25  # on an FFT bin (16000 / 2560 = 6.25 Hz)
    x = synth.tone(np.random.default_rng(0), 5.0, SR, {"freq": freq}) * 0.1
    out = features.log_mel(x)
    assert out.shape == (31, 64) and out.dtype == jnp.float32
    assert np.all(np.argmax(np.asarray(out), axis=1) == 30)


def test_mel_filterbank_sanity():
    bank = features.mel_filterbank()
    assert bank.shape == (64, 1281) and bank.dtype == np.float32
    assert np.all(bank.sum(axis=1) > 0) and np.all(bank.max(axis=1) <= 1.0) and np.all(bank >= 0)
    assert np.all(np.diff(np.argmax(bank, axis=1)) >= 0)  # centres rise
    freqs = np.fft.rfftfreq(2560, 1 / SR)
    inside = (freqs > features.mel_centres_hz()[0]) & (freqs < features.mel_centres_hz()[-1])
    np.testing.assert_allclose(bank[:, inside].sum(axis=0), 1.0, atol=1e-5)  # triangles tile to 1


def test_log_mel_refuses_short_clip():
    with pytest.raises(ValueError, match=r"^invalid framing.num_samples=100: expected at least one frame \(2560 samples\)$"):
        features.log_mel(np.zeros(100, np.float32))


# --- losses ---

def _one_clip():
    audio = jnp.array([[[3.0, 0.0], [0.0, 2.0]]])  # [1 clip, 2 frames, D=2]: unit-normed to e_0, e_1
    text = jnp.array([[2.0, 0.0]])
    labels = jnp.array([[[1, 0]]])
    return audio, text, labels, jnp.ones((1, 1), bool)


def test_sed_loss_one_clip_one_text_two_frames_by_hand():
    audio, text, labels, valid = _one_clip()
    alpha, beta = jnp.array([10.0]), jnp.array([-8.0])
    # h = 10 * [1, 0] - 8 = [2, -8]; z = [+1, -1]: (log(1 + e^-2) + log(1 + e^-8)) / 2
    np.testing.assert_allclose(losses.frame_logits(audio, text, alpha, beta)[0, 0], [2.0, -8.0], atol=1e-6)
    expected = (0.126928011 + 0.000335406) / 2
    assert float(losses.sed_loss(audio, text, alpha, beta, labels, valid)) == pytest.approx(expected, abs=1e-7)
    assert float(losses.siglip_s0_loss(audio, text, 10.0, -8.0, labels, valid)) == pytest.approx(expected, abs=1e-7)


def test_sed_loss_on_hand_logits_two_clips_two_texts_three_frames():
    h = jnp.array([[[1.0, -1.0, 0.0], [2.0, 0.0, -2.0]], [[0.0, 0.0, 0.0], [5.0, -5.0, 3.0]]])
    labels = jnp.array([[[1, 0, 1], [0, 0, 1]], [[1, 1, 1], [1, 0, 0]]])
    valid = jnp.array([[True, True], [True, False]])  # clip 1 / text 1 is not a valid pair
    sp = lambda x: math.log1p(math.exp(-x))  # -log sigmoid(x)  # noqa: E731
    terms = [sp(1), sp(1), sp(0), sp(-2), sp(0), sp(-2), sp(0), sp(0), sp(0)]
    assert float(losses.sed_loss_from_logits(h, labels, valid)) == pytest.approx(sum(terms) / 9, abs=1e-6)
    # r_k: text 0 over clips 0, 1: (2 + 3) / 6; text 1 over clip 0 only: 1 / 3
    np.testing.assert_allclose(losses.positive_rate(labels, valid), [5 / 6, 1 / 3], atol=1e-7)


def test_beta_is_detached_in_sed_but_trained_by_prior():
    audio, text, labels, valid = _one_clip()
    alpha, beta = jnp.array([10.0]), jnp.array([-8.0])
    g_sed = jax.grad(lambda b: losses.sed_loss(audio, text, alpha, b, labels, valid))(beta)
    assert float(g_sed[0]) == 0.0
    g_alpha = jax.grad(lambda a: losses.sed_loss(audio, text, a, beta, labels, valid))(alpha)
    assert float(g_alpha[0]) != 0.0
    rate = losses.positive_rate(labels, valid)  # 0.5
    g_prior = jax.grad(lambda b: losses.prior_loss(b, rate))(beta)
    assert float(g_prior[0]) == pytest.approx(0.000335350 - 0.5, abs=1e-6)  # sigmoid(beta) - r
    g_s0 = jax.grad(lambda b: losses.siglip_s0_loss(audio, text, 10.0, b, labels, valid))(jnp.float32(-8.0))
    assert float(g_s0) != 0.0  # S0's bias is trained by the frame loss


def test_prior_loss_by_hand():
    # BCE(sigmoid(0), 0.25) = log 2 for any r; BCE(sigmoid(-8), 0) = log(1 + e^-8)
    value = losses.prior_loss(jnp.array([0.0, -8.0]), jnp.array([0.25, 0.0]))
    assert float(value) == pytest.approx((math.log(2) + 0.000335406) / 2, abs=1e-7)


def test_unbiased_scores_by_hand():
    beta = jnp.array([-8.0, 0.0])
    p = jnp.array([[[float(jax.nn.sigmoid(-8.0)), 0.9], [0.5, 0.2]]])  # [1, 2 texts, 2 frames]
    s = losses.unbiased_scores(p, beta)
    np.testing.assert_allclose(s[0, 0, 0], 0.5, atol=1e-6)  # p = sigmoid(beta)
    np.testing.assert_allclose(s[0, 0, 1], 0.9 / (0.9 + 0.000335350), atol=1e-6)
    np.testing.assert_allclose(s[0, 1], [0.5, 0.2 / 0.7], atol=1e-6)


def test_infonce_values():
    same = jnp.ones((4, 3))
    assert float(jax.jit(losses.clip_loss)(same, same)) == pytest.approx(math.log(4), abs=1e-6)
    eye = jnp.eye(2)  # logits = scale * I with scale 1: each row CE = log(1 + e^-1)
    assert float(jax.jit(losses.clip_loss)(eye, eye, 1.0)) == pytest.approx(0.313261687, abs=1e-6)


def test_flam_loss_sums_its_parts():
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    audio = jax.random.normal(k1, (3, 31, 8))
    text = jax.random.normal(k2, (3, 8))
    labels = jax.random.bernoulli(k3, 0.3, (3, 3, 31))
    valid = jnp.ones((3, 3), bool)
    alpha, beta = jnp.full(3, losses.ALPHA_INIT), jnp.full(3, losses.BETA_INIT)
    total, parts = jax.jit(losses.flam_loss)(audio, text, alpha, beta, labels, valid, audio.mean(axis=1), text)
    assert float(total) == pytest.approx(float(parts["clip"] + 200 * parts["sed"] + parts["prior"]), rel=1e-6)


def test_loss_refusals():
    with pytest.raises(ValueError, match=r"^invalid FlamLossConfig.sed_weight=-1.0: expected a non-negative loss weight$"):
        losses.FlamLossConfig(sed_weight=-1.0)
    with pytest.raises(ValueError, match=r"^invalid losses.K=1: expected at least 2 \(audio, text\) pairs for InfoNCE$"):
        losses.clip_loss(jnp.ones((1, 3)), jnp.ones((1, 3)))


# --- tiny encoders: a few training steps on one batch (a smoke test, not a training loop) ---

def test_encoders_init_and_a_few_steps_lower_the_loss(train_clips):
    data = batch.make_batch(train_clips[:4])
    assert data.feats.shape == (4, 31, 64) and data.labels.shape == (4, len(data.captions), 31)
    audio_net, text_net = encoders.AudioEncoder(), encoders.TextEncoder()
    key_a, key_t = jax.random.split(jax.random.PRNGKey(0))
    params = {
        "audio": audio_net.init(key_a, data.feats),
        "text": text_net.init(key_t, data.texts, data.text_mask),
        "logit_scale": jnp.log(jnp.float32(losses.LOGIT_SCALE_INIT)),
    }
    _, alpha0, beta0 = text_net.apply(params["text"], data.texts, data.text_mask)
    np.testing.assert_allclose(alpha0, losses.ALPHA_INIT, rtol=1e-5)
    np.testing.assert_allclose(beta0, losses.BETA_INIT, atol=1e-5)
    valid = jnp.ones(data.labels.shape[:2], bool)

    def loss_fn(p):
        frames, global_audio = audio_net.apply(p["audio"], data.feats)
        text, alpha, beta = text_net.apply(p["text"], data.texts, data.text_mask)
        clip_text, _, _ = text_net.apply(p["text"], data.clip_texts, data.clip_mask)
        total, _ = losses.flam_loss(frames, text, alpha, beta, data.labels, valid, global_audio, clip_text,
                                    jnp.exp(p["logit_scale"]))
        return total

    opt = optax.adam(1e-3)
    state = opt.init(params)

    @jax.jit
    def step(p, s):
        value, grads = jax.value_and_grad(loss_fn)(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    values = []
    for _ in range(5):
        params, state, value = step(params, state)
        values.append(float(value))
    assert all(np.isfinite(values)) and values[-1] < values[0]


def test_batch_refuses_empty_caption_and_one_clip(train_clips):
    with pytest.raises(ValueError, match=r"^invalid captions.caption='': expected a non-empty string$"):
        batch.encode_bytes(["a low tone", ""])
    with pytest.raises(ValueError, match=r"^invalid batch.len\(clips\)=1: expected at least 2 clips$"):
        batch.make_batch(train_clips[:1])
