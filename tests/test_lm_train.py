"""LM training tests: a tiny model overfits a tiny corpus, exact resume, evaluations, CLI, config errors, data parallelism.

Everything trains a two-layer d_model-64 model on a handful of hand-written files in a temporary directory.
"""

import dataclasses
import json
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.lm.cli import lm_main
from jaxrl_suite.lm.report import EvalConfig, evaluate_run
from jaxrl_suite.lm.train import (
    TrainConfig,
    init_train_state,
    load_params,
    make_train_step,
    next_token_loss,
    resume_lm,
    train_lm,
)
from jaxrl_suite.models import model_config
from jaxrl_suite.runner import read_metrics
from tests.conftest import cpu_devices_env

MODEL = model_config("fox-pro-tiny", d_model=64, num_heads=2, num_layers=2, mlp_multiple_of=16)
SNIPPETS = [
    "def add(a, b):\n    return a + b\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "for index in range(10):\n    print(index * index)\n",
    "import os\nprint(os.path.join('a', 'b'))\n",
    "while True:\n    break\n",
    "values = [1, 2, 3]\nprint(sum(values))\n",
]
VOLATILE = {"wall_time", "tokens_per_s"}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for index, snippet in enumerate(SNIPPETS * 2):
        (root / f"module_{index}.py").write_text(snippet * 4)
    return root


def run_config(corpus_dir, **overrides):
    fields = dict(model="fox-pro-tiny", corpus=str(corpus_dir), validation_fraction=0.25, sequence_length=32,
                  batch_size=8, steps=150, learning_rate=3e-3, warmup_steps=10, log_every=25, eval_every=75,
                  eval_sequences=4, progress=False, tensorboard=False)
    fields.update(overrides)
    return TrainConfig(**fields)


@pytest.fixture(scope="module")
def trained_run(corpus_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "overfit"
    return train_lm(run_config(corpus_dir), run_dir, model=MODEL)


def test_tiny_model_overfits_tiny_corpus_and_writes_a_run_directory(trained_run):
    losses = [record["loss"] for record in trained_run.records]
    assert losses[0] > 2.0 and losses[-1] < 0.5, losses
    run_dir = trained_run.run_dir
    config = json.loads((run_dir / "config.json").read_text())
    assert config["kind"] == "lm" and config["model"]["d_model"] == 64 and config["num_parameters"] > 0
    records = read_metrics(run_dir)
    assert [r["updates"] for r in records] == [25, 50, 75, 100, 125, 150]
    assert [r["tokens"] for r in records][-1] == 150 * 8 * 32
    assert sum("val_loss" in r for r in records) == 2
    assert (run_dir / "learning_curve.png").stat().st_size > 1000
    model, params, step = load_params(run_dir)
    assert model == MODEL and step == 150
    chex.assert_trees_all_equal(params, trained_run.state.params)


def test_resume_continues_bit_for_bit(corpus_dir, tmp_path):
    config = run_config(corpus_dir, steps=8, log_every=2, eval_every=4, warmup_steps=2)
    full = train_lm(config, tmp_path / "full", model=MODEL)
    partial = train_lm(config, tmp_path / "cut", model=MODEL, max_chunks=2)
    assert not partial.completed
    resumed = resume_lm(tmp_path / "cut")
    assert resumed.completed
    chex.assert_trees_all_equal(resumed.state, full.state)

    def stable(records):
        return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]

    assert stable(read_metrics(tmp_path / "cut")) == stable(read_metrics(tmp_path / "full"))


def test_evaluations_and_acp_report_on_a_trained_run(trained_run):
    config = EvalConfig(validation_sequences=4, documents=4, extrapolation=2, needle_lengths=(2,),
                        needle_depths=(0.5,), needle_trials=2, acp_sequences=2, acp_block_size=16, batch_size=4)
    result = evaluate_run(trained_run.run_dir, config)
    assert len(result["position_loss"]) == 64 and result["validation_loss"] > 0
    assert {"loss_1x", "loss_2x", "loss_positions_1x_to_2x"} <= result.keys()
    assert np.array(result["needle"]["exact"]).shape == (1, 1)
    acp = json.loads((trained_run.run_dir / "acp.json").read_text())
    assert np.array(acp["tile_fraction_skipped"]).shape == (MODEL.num_layers, MODEL.num_heads)
    assert 0.0 <= acp["mean_tile_fraction_skipped"] <= 1.0
    assert abs(acp["loss_change"]) < 1e-3  # the pruned mass is bounded by eps = e^-10 per row
    for name in ("eval.json", "per_position_loss.png", "needle.png"):
        assert (trained_run.run_dir / name).stat().st_size > 100


def test_cli_generate_and_eval_errors(trained_run, capsys):
    assert lm_main(["generate", str(trained_run.run_dir), "--prompt", "def ", "--tokens", "12",
                    "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("def ")
    assert lm_main(["eval", str(trained_run.run_dir / "missing")]) == 2
    assert "not a jaxrl run directory" in capsys.readouterr().err
    assert lm_main(["train", "--steps", "0"]) == 2
    assert "train.steps=0" in capsys.readouterr().err
    assert lm_main(["bogus"]) == 2


def test_cli_train_then_resume_refuses_to_overwrite(corpus_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    flags = ["--model", "fox-tiny", "--corpus", str(corpus_dir), "--validation-fraction", "0.25",
             "--sequence-length", "16", "--batch-size", "2", "--steps", "2", "--warmup-steps", "1",
             "--log-every", "1", "--eval-sequences", "2", "--no-progress", "--no-tensorboard", "--out", str(out)]
    assert lm_main(["train", *flags]) == 0
    assert len(read_metrics(out)) == 2
    assert lm_main(["train", *flags]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("field,value,message", [
    ("grad_accumulation", 3, "train.grad_accumulation=3: expected a divisor of batch_size=8"),
    ("devices", 64, "train.devices=64"),
    ("warmup_steps", 150, "train.warmup_steps=150"),
    ("compute_dtype", "float16", "train.compute_dtype='float16'"),
])
def test_bad_train_config_names_field_and_creates_nothing(corpus_dir, tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        train_lm(dataclasses.replace(run_config(corpus_dir), **{field: value}), tmp_path / "run", model=MODEL)
    assert not (tmp_path / "run").exists()


def test_grad_accumulation_gives_the_same_update_and_bf16_the_same_loss(corpus_dir):
    config = run_config(corpus_dir, model="fox-tiny")
    small = dataclasses.replace(MODEL, attention_impl="reference")
    tokens = jax.random.randint(jax.random.PRNGKey(0), (8, 33), 0, 257)
    state = init_train_state(config, small)
    whole, _ = jax.jit(make_train_step(config, small))(state, tokens)
    accumulated, _ = jax.jit(make_train_step(dataclasses.replace(config, grad_accumulation=4), small))(state, tokens)
    chex.assert_trees_all_close(whole.params, accumulated.params, atol=1e-6, rtol=1e-5)
    loss = jax.jit(next_token_loss, static_argnums=0)
    float32_loss = loss(small, state.params, tokens)
    bfloat16_loss = loss(dataclasses.replace(small, compute_dtype="bfloat16"), state.params, tokens)
    assert abs(float(float32_loss) - float(bfloat16_loss)) < 0.02 and jnp.isfinite(bfloat16_loss)


@pytest.mark.slow
def test_data_parallel_over_two_devices_matches_one_device(corpus_dir, tmp_path):
    script = textwrap.dedent(f"""
        import dataclasses, jax, numpy as np
        from jaxrl_suite.lm.train import TrainConfig, train_lm
        from jaxrl_suite.models import model_config
        assert len(jax.devices()) == 2
        model = model_config("fox-tiny", d_model=64, num_heads=2, num_layers=1, mlp_multiple_of=16)
        config = TrainConfig(corpus={str(corpus_dir)!r}, validation_fraction=0.25, sequence_length=32, batch_size=8,
                             steps=6, warmup_steps=1, log_every=3, eval_sequences=4, progress=False,
                             tensorboard=False)
        one = train_lm(config, {str(tmp_path / "one")!r}, model=model)
        two = train_lm(dataclasses.replace(config, devices=2), {str(tmp_path / "two")!r}, model=model)
        assert len(two.state.params["embedding"]["embedding"].sharding.device_set) == 2
        np.testing.assert_allclose([r["loss"] for r in one.records], [r["loss"] for r in two.records], rtol=1e-5)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), one.state.params, two.state.params)
        print("data parallel ok")
    """)
    env = cpu_devices_env(2)
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "data parallel ok" in completed.stdout
