"""Online RLHF loops: SFT run directories, sampler log-probs, the first DPO update, sync vs async, staleness, resume, CLI.

A 2-layer d_model-32 FoX model is fine-tuned for 20 steps once per module; the loops then run a few rounds of 4 prompts.
"""

import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.lm.cli import lm_main
from jaxrl_suite.lm.rlhf.loop import OnlineConfig, resume_online, run_online
from jaxrl_suite.lm.rlhf.sampling import pair_rows, response_logprobs, sample_rows
from jaxrl_suite.lm.rlhf.sft import SFTConfig, load_sft, train_sft
from jaxrl_suite.lm.rlhf.task import make_prompts
from jaxrl_suite.models import LanguageModel, generate
from jaxrl_suite.runner import read_metrics

SFT = SFTConfig(d_model=32, num_heads=2, examples=256, steps=20, warmup_steps=2, log_every=10, eval_prompts=16,
                progress=False)
SMALL = OnlineConfig(generation_batch=4, episodes=12, eval_every=0, eval_prompts=8, learning_rate=1e-3,
                     progress=False)
LOSS_KEYS = ("loss", "kl_to_sft", "margin", "accuracy", "grad_norm", "staleness")


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sft") / "run"
    records = train_sft(SFT, run_dir)
    assert [r["updates"] for r in records] == [10, 20]
    assert 0.0 <= records[-1]["win_rate"] <= 1.0 and 0.0 <= records[-1]["eos_rate"] <= 1.0
    return run_dir


def _same_params(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _learner_records(records):
    return [{key: r[key] for key in LOSS_KEYS if key in r} for r in records if r["updates"] > 0]


def test_sft_run_reloads_and_is_deterministic(sft_dir, tmp_path):
    config, model, params = load_sft(sft_dir)
    assert config == SFT and model.d_model == 32 and model.attention == "forgetting"
    again = train_sft(SFT, tmp_path / "again")
    assert again == [{**r, "wall_time": a["wall_time"]} for r, a in zip(read_metrics(sft_dir), again, strict=True)]
    assert _same_params(params, load_sft(tmp_path / "again")[2])


def test_sampler_logprobs_equal_the_learners_recompute(sft_dir):
    config, model, params = load_sft(sft_dir)
    _, prompt_tokens = pair_rows(make_prompts(8, seed=5), config.prompt_width)
    rows, sampler = sample_rows(params, model, jnp.asarray(prompt_tokens), jax.random.PRNGKey(3), 24, 0.7)
    chex.assert_shape([rows, sampler], [(16, config.prompt_width + 24), (16,)])
    learner = response_logprobs(params, model, rows, config.prompt_width, 0.7)
    # Sums of ~24 tokens near -130 in float32 (1 ulp = 1.5e-5): compared relatively; per token to 1e-5 below.
    np.testing.assert_allclose(np.asarray(sampler), np.asarray(learner), rtol=1e-6)
    generation = generate(params, model, jnp.asarray(prompt_tokens), 24, jax.random.PRNGKey(3), 0.7)
    np.testing.assert_array_equal(np.asarray(generation.tokens), np.asarray(rows[:, config.prompt_width:]))
    sampler_tokens = jax.nn.log_softmax(generation.logits / 0.7)
    logits = LanguageModel(model).apply({"params": params}, rows[:, :-1])[:, config.prompt_width - 1:]
    np.testing.assert_allclose(np.asarray(sampler_tokens), np.asarray(jax.nn.log_softmax(logits / 0.7)),
                               rtol=0, atol=1e-5)
    # At temperature 1 the same rows score differently: the temperature is really applied.
    assert np.abs(np.asarray(response_logprobs(params, model, rows, config.prompt_width, 1.0)) - learner).max() > 1e-2


def test_first_dpo_update_is_log_2_and_async_lag_0_equals_sync_bit_for_bit(sft_dir, tmp_path):
    sync = run_online(SMALL, sft_dir, tmp_path / "sync")
    lag_0 = run_online(dataclasses.replace(SMALL, mode="async", max_staleness=0), sft_dir, tmp_path / "async")
    first = sync.records[1]
    # The policy starts at the reference: every margin is 0, the loss -log sigmoid(0) = log 2, and the
    # sampler's log-probs equal the reference's recompute, so the KL estimate is 0.
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert first["margin"] == 0.0 and first["kl_to_sft"] == pytest.approx(0.0, abs=1e-5)
    assert [r["updates"] for r in sync.records] == [0, 1, 2, 3]
    assert _learner_records(sync.records) == _learner_records(lag_0.records)
    assert _same_params(sync.state.params, lag_0.state.params)
    assert sync.records[-1]["win_rate"] == lag_0.records[-1]["win_rate"]
    assert not _same_params(sync.state.params, load_sft(sft_dir)[2])


def test_staleness_of_each_batch_sync_n_and_async(sft_dir, tmp_path):
    # N = 2 minibatches of 2 prompts per round; update u of round r sampled with the params after round r - lag.
    sync = run_online(dataclasses.replace(SMALL, off_policy_n=2), sft_dir, tmp_path / "sync")
    assert [r["staleness"] for r in sync.records[1:]] == [0, 1, 0, 1, 0, 1]
    config = dataclasses.replace(SMALL, off_policy_n=2, mode="async", max_staleness=1, episodes=16)
    lagged = run_online(config, sft_dir, tmp_path / "async")
    # rounds 0..3 sample with the params after rounds 0, 0, 1, 2: staleness u - 2 * version.
    assert [r["staleness"] for r in lagged.records[1:]] == [0, 1, 2, 3, 2, 3, 2, 3]
    assert all(r["generation_s"] > 0 and r["learning_s"] > 0 for r in lagged.records[1:])


def test_async_resume_continues_exactly(sft_dir, tmp_path):
    config = dataclasses.replace(SMALL, algo="rloo", mode="async", max_staleness=2, episodes=20)
    whole = run_online(config, sft_dir, tmp_path / "whole")
    part = run_online(config, sft_dir, tmp_path / "part", max_rounds=2)
    assert not part.completed
    rest = resume_online(tmp_path / "part")
    assert rest.completed and [r["updates"] for r in rest.records] == [3, 4, 5]
    assert _learner_records(read_metrics(tmp_path / "part")) == _learner_records(whole.records)
    assert _same_params(rest.state.params, whole.state.params)


def test_best_of_2_trains(sft_dir, tmp_path):
    result = run_online(dataclasses.replace(SMALL, algo="best-of-2"), sft_dir, tmp_path / "bo2")
    assert len(result.records) == 4 and all(r["loss"] > 0 for r in result.records[1:])


@pytest.mark.parametrize(("flags", "message"), [
    (["--off-policy-n", "3"], "invalid dpo.off_policy_n=3: expected a divisor of generation_batch=32"),
    (["--mode", "async", "--max-staleness", "-1"], "invalid dpo.max_staleness=-1: expected an integer >= 0"),
    (["--temperature", "0"], "invalid dpo.temperature=0.0: expected a positive number"),
    (["--response-width", "11"], "invalid dpo.response_width=11: expected an integer >= 12"),
    (["--max-staleness", "0"], "invalid dpo.max_staleness=0: expected the default 1 unless mode='async'"),
])
def test_dpo_cli_refusals(sft_dir, tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    assert lm_main(["dpo", "--sft", str(sft_dir), "--out", str(out), *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {message}") and "\n" not in error
    assert not out.exists()


def test_dpo_cli_refuses_a_directory_that_is_not_an_sft_run(sft_dir, tmp_path, capsys):
    run_online(SMALL, sft_dir, tmp_path / "online")
    for not_sft in (tmp_path / "online", tmp_path / "missing"):
        assert lm_main(["dpo", "--sft", str(not_sft), "--out", str(tmp_path / "out")]) == 2
        error = capsys.readouterr().err.strip()
        assert error == (f"error: invalid dpo.sft={str(not_sft)!r}: expected an SFT run directory "
                         "(config.json of kind 'sft', written by `jaxrl lm sft`)")
    assert not (tmp_path / "out").exists() and not (tmp_path / "missing").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--response-width", "15"], "invalid sft.response_width=15: expected an integer >= 16"),
    (["--prompt-width", "52"], "invalid sft.prompt_width=52: expected an integer >= 53"),
    (["--task", "tldr"], "invalid sft.task='tldr': expected one of ('bow',)"),
])
def test_sft_cli_refusals(tmp_path, capsys, flags, message):
    assert lm_main(["sft", "--out", str(tmp_path / "out"), *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {message}") and "\n" not in error
    assert not (tmp_path / "out").exists()


def test_dpo_cli_runs_resumes_and_refuses_to_resume_an_sft_run(sft_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    flags = ["--generation-batch", "4", "--episodes", "8", "--eval-prompts", "8", "--no-progress"]
    assert lm_main(["dpo", "--sft", str(sft_dir), "--out", str(out), *flags]) == 0
    assert [r["updates"] for r in read_metrics(out)] == [0, 1, 2]
    assert lm_main(["dpo", "--resume", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-2].startswith("done: 8 episodes; win rate ")
    assert lm_main(["dpo", "--resume", str(sft_dir)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: invalid dpo.resume={str(sft_dir)!r}: expected a run directory of `jaxrl lm dpo` "
        "(config.json of kind 'online_rlhf')")
