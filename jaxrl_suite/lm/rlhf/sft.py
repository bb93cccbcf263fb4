"""Supervised fine-tuning of a small FoX model on the noisy teacher's bag-of-words responses (`jaxrl lm sft`).

Writes a run directory of kind "sft" (config.json, checkpoints/, metrics.jsonl) that `jaxrl lm dpo --sft` reads.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl_suite.lm.finetune import encode_rows, masked_sft_loss, response_mask
from jaxrl_suite.lm.rlhf.sampling import evaluate_policy, make_eval_set
from jaxrl_suite.lm.rlhf.task import PROMPT_WIDTH, RESPONSE_WIDTH, TOP_K, WORDS, make_sft_pairs
from jaxrl_suite.lm.train import TrainConfig, TrainState, init_train_state, make_optimizer
from jaxrl_suite.models import ModelConfig, count_parameters, model_config
from jaxrl_suite.models.config import model_config_from_dict
from jaxrl_suite.runner.checkpoints import Checkpointer
from jaxrl_suite.runner.metrics_log import MetricsWriter
from jaxrl_suite.runner.progress import Progress
from jaxrl_suite.runner.run_dir import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    RunDirectoryError,
    prepare_run_dir,
    read_config,
)
from jaxrl_suite.validation import require

SFT_RUN_KIND = "sft"
TASKS = ("bow",)
_DATA_STREAM = 2
TEACHER_RESPONSE_BYTES = (TOP_K + 1) * (max(len(word) for word in WORDS) + 1)
"""16: the teacher's longest response (the ideal plus one added word, with spaces) plus its EOS."""


@dataclasses.dataclass(frozen=True)
class SFTConfig:
    """One SFT run. Defaults: a 2-layer d_model-64 FoX model that trains in well under a minute on 2 CPU cores."""

    task: str = "bow"
    """The task: 'bow' (bag-of-words summaries, lm.rlhf.task)."""
    model: str = "fox-tiny"
    """Model preset (jaxrl_suite.models.PRESETS); d_model, num_heads, num_layers and mlp_multiple_of override it."""
    d_model: int = 64
    num_heads: int = 2
    num_layers: int = 2
    mlp_multiple_of: int = 16
    examples: int = 4096
    """(prompt, teacher response) training pairs."""
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.0
    prompt_width: int = PROMPT_WIDTH
    """Bytes of every prompt row (the task's longest prompt plus one space is the least that fits)."""
    response_width: int = RESPONSE_WIDTH
    """Bytes of every response row (the teacher's longest response plus EOS is the least that fits)."""
    eval_prompts: int = 256
    """Held-out prompts of the final win-rate evaluation."""
    temperature: float = 0.7
    """Sampling temperature of the evaluation (the online RLHF default)."""
    log_every: int = 50
    seed: int = 0
    tensorboard: bool = False
    progress: bool = True

    def validate(self) -> SFTConfig:
        require(self.task in TASKS, "sft", "task", self.task, f"one of {TASKS}")
        require(self.examples >= 1, "sft", "examples", self.examples, "an integer >= 1")
        require(self.eval_prompts >= 1, "sft", "eval_prompts", self.eval_prompts, "an integer >= 1")
        require(self.temperature > 0, "sft", "temperature", self.temperature, "a positive number")
        require(self.log_every >= 1, "sft", "log_every", self.log_every, "an integer >= 1")
        require(self.prompt_width >= PROMPT_WIDTH, "sft", "prompt_width", self.prompt_width,
                f"an integer >= {PROMPT_WIDTH} (the longest bag-of-words prompt plus one space)")
        require(self.response_width >= TEACHER_RESPONSE_BYTES, "sft", "response_width", self.response_width,
                f"an integer >= {TEACHER_RESPONSE_BYTES} (the teacher's longest response plus EOS)")
        self.train_config().validate()
        self.model_config()
        return self

    def model_config(self) -> ModelConfig:
        return model_config(self.model, d_model=self.d_model, num_heads=self.num_heads, num_layers=self.num_layers,
                            mlp_multiple_of=self.mlp_multiple_of)

    def train_config(self) -> TrainConfig:
        """The optimizer settings in lm.train's TrainConfig (AdamW, warm-up + cosine, clipping)."""
        return TrainConfig(model=self.model, batch_size=self.batch_size, steps=self.steps,
                           learning_rate=self.learning_rate, warmup_steps=self.warmup_steps,
                           weight_decay=self.weight_decay, seed=self.seed)


def sft_rows(config: SFTConfig) -> np.ndarray:
    """The training rows int32 [examples, prompt_width + response_width]; ValueError when a width is too short."""
    return encode_rows(make_sft_pairs(config.examples, config.seed), config.prompt_width, config.response_width)


def batch_indices(num_examples: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """int [steps, batch_size]: epochs of seeded permutations of the examples, concatenated."""
    rng = np.random.default_rng([seed, _DATA_STREAM])
    epochs = -(-steps * batch_size // num_examples)
    order = np.concatenate([rng.permutation(num_examples) for _ in range(epochs)])
    return order[: steps * batch_size].reshape(steps, batch_size)


def make_sft_chunk(model: ModelConfig, optimizer: optax.GradientTransformation, prompt_width: int):
    """jit of a scan of masked-SFT AdamW steps over batches of rows [num_steps, batch, T]."""
    def loss(params: chex.ArrayTree, rows: jax.Array) -> jax.Array:
        return masked_sft_loss(model, params, rows, response_mask(rows, prompt_width))[0]

    def step(state: TrainState, rows: jax.Array) -> tuple[TrainState, jax.Array]:
        value, grads = jax.value_and_grad(loss)(state.params, rows)
        return state.apply_gradients(optimizer, grads), value

    return jax.jit(lambda state, batches: jax.lax.scan(step, state, batches))


def write_sft_config(run_dir: pathlib.Path, config: SFTConfig, model: ModelConfig, num_parameters: int) -> None:
    from jaxrl_suite.machine import machine_info

    payload = {"kind": SFT_RUN_KIND, "sft": dataclasses.asdict(config), "model": dataclasses.asdict(model),
               "num_parameters": num_parameters, "machine": machine_info()}
    (run_dir / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def train_sft(config: SFTConfig, run_dir: str | pathlib.Path, overwrite: bool = False) -> list[dict[str, Any]]:
    """Trains config.steps masked-SFT steps into run_dir, then evaluates the win rate; returns the records."""
    config.validate()
    model = config.model_config()
    rows = sft_rows(config)
    run_dir = pathlib.Path(run_dir)
    prepare_run_dir(run_dir, resume=False, overwrite=overwrite)
    optimizer = make_optimizer(config.train_config())
    state = jax.device_put(init_train_state(config.train_config(), model), jax.devices()[0])
    write_sft_config(run_dir, config, model, count_parameters(state.params))
    chunk = make_sft_chunk(model, optimizer, config.prompt_width)
    indices = batch_indices(len(rows), config.batch_size, config.steps, config.seed)
    writer = MetricsWriter(run_dir, tensorboard=config.tensorboard, step_key="examples")
    progress = Progress(config.steps, enabled=config.progress, unit="steps", metric="loss", metric_label="loss",
                        rate_key="steps_per_s", metric_digits=3)
    records, start = [], time.monotonic()
    try:
        for first in range(0, config.steps, config.log_every):
            batch = indices[first:first + config.log_every]
            state, losses = chunk(state, jnp.asarray(rows[batch]))
            step = first + len(batch)
            record: dict[str, Any] = {"updates": step, "examples": step * config.batch_size,
                                      "loss": float(np.mean(np.asarray(losses)))}
            if step == config.steps:
                eval_set = make_eval_set(config.eval_prompts, config.prompt_width)
                record.update(evaluate_policy(model, state.params, eval_set, config.response_width,
                                              config.temperature))
            record["wall_time"] = time.monotonic() - start
            writer.write(record)
            records.append(record)
            progress.update(step, record)
        checkpointer = Checkpointer(run_dir / CHECKPOINT_DIR, keep=1)
        checkpointer.save(config.steps, state, {"updates": config.steps})
        checkpointer.close()
    finally:
        progress.close()
        writer.close()
    return records


def read_sft_config(run_dir: str | pathlib.Path, field: str = "sft") -> tuple[SFTConfig, ModelConfig]:
    """The SFTConfig and ModelConfig of an SFT run; ValueError (one line naming `field`) for anything else."""
    expected = "an SFT run directory (config.json of kind 'sft', written by `jaxrl lm sft`)"
    try:
        stored = read_config(run_dir)
    except RunDirectoryError:
        stored = {}
    require(stored.get("kind") == SFT_RUN_KIND, "dpo", field, str(run_dir), expected)
    require((pathlib.Path(run_dir) / CHECKPOINT_DIR).is_dir(), "dpo", field, str(run_dir),
            f"{expected} that finished (it has no {CHECKPOINT_DIR}/)")
    return SFTConfig(**stored["sft"]), model_config_from_dict(stored["model"])


def load_sft(run_dir: str | pathlib.Path) -> tuple[SFTConfig, ModelConfig, chex.ArrayTree]:
    """(config, model, params) of the final checkpoint of an SFT run directory."""
    config, model = read_sft_config(run_dir)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
                            jax.eval_shape(lambda: init_train_state(config.train_config(), model)))
    state, _ = Checkpointer(pathlib.Path(run_dir) / CHECKPOINT_DIR).restore(abstract)
    return config, model, state.params
