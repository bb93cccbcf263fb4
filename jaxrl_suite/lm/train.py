"""Language-model training: AdamW with warm-up + cosine, clipping, bf16 compute, data parallelism, exact resume.

Uses the run directory conventions of jaxrl_suite.runner (config.json, metrics.jsonl, TensorBoard, Orbax, plots).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxrl_suite.lm.data import Corpus, PackedStream, packed_windows
from jaxrl_suite.lm.evaluate import mean_loss
from jaxrl_suite.models import LanguageModel, ModelConfig, count_parameters, init_params, model_config
from jaxrl_suite.models.config import ATTENTION_IMPLS, COMPUTE_DTYPES, model_config_from_dict
from jaxrl_suite.runner.checkpoints import Checkpointer
from jaxrl_suite.runner.metrics_log import MetricsWriter, truncate_metrics
from jaxrl_suite.runner.plots import plot_runs
from jaxrl_suite.runner.progress import Progress
from jaxrl_suite.runner.run_dir import CHECKPOINT_DIR, CONFIG_FILE, PLOT_FILE, prepare_run_dir, read_config
from jaxrl_suite.validation import require

DATA_AXIS = "data"
RUN_KIND = "lm"
EVAL_ARTIFACTS = ("eval.json", "per_position_loss.png", "needle.png", "acp.json")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One language-model training run. Defaults: a CPU-sized run of a tiny model on the stdlib corpus."""

    model: str = "fox-pro-tiny"
    """Model preset (jaxrl_suite.models.PRESETS), e.g. fox-tiny, fox-pro-125m, transformer-760m."""
    sequence_length: int = 256
    """Training context length in tokens (bytes)."""
    batch_size: int = 16
    """Sequences per optimizer step (global, over all devices)."""
    steps: int = 1000
    """Optimizer steps."""
    learning_rate: float = 2e-3
    """Peak learning rate (paper: 2e-3 at 125M)."""
    warmup_steps: int = 100
    """Linear warm-up from 0 to the peak, then cosine decay."""
    final_learning_rate_fraction: float = 0.0
    """Learning rate at the last step as a fraction of the peak (paper: 0)."""
    weight_decay: float = 0.1
    """AdamW decoupled weight decay, applied to kernels and embeddings only."""
    adam_b1: float = 0.9
    adam_b2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    grad_accumulation: int = 1
    """Split each batch into this many sequential micro-batches (same update, less memory)."""
    compute_dtype: str = "float32"
    """Activation dtype: 'float32' or 'bfloat16' (params, optimizer, gates and the loss stay float32)."""
    attention_impl: str = "auto"
    """forgetting_attention implementation: auto, reference, xla or pallas."""
    seed: int = 0
    """Parameter initialization and data order."""
    devices: int = 1
    """Data-parallel devices (the batch is split over a 1-D Mesh); 0 = all visible devices."""
    corpus: str = ""
    """Directory of .py files to train on; '' = the Python standard library of this interpreter."""
    validation_fraction: float = 0.05
    """Fraction of files (chosen by a hash of their path) held out for validation."""
    log_every: int = 10
    """Steps per compiled chunk and log record."""
    eval_every: int = 0
    """Steps between validation-loss evaluations (rounded to log points); 0 = at the end, -1 = never."""
    eval_sequences: int = 64
    """Validation windows of sequence_length + 1 tokens (a fixed set)."""
    checkpoint_every: int = 0
    """Steps between checkpoints (rounded to log points); 0 = at each evaluation and at the end."""
    keep_checkpoints: int = 2
    tensorboard: bool = True
    progress: bool = True

    def validate(self) -> TrainConfig:
        require(self.sequence_length >= 2, "train", "sequence_length", self.sequence_length, "an integer >= 2")
        require(self.batch_size >= 1, "train", "batch_size", self.batch_size, "an integer >= 1")
        require(self.steps >= 1, "train", "steps", self.steps, "an integer >= 1")
        require(self.learning_rate > 0, "train", "learning_rate", self.learning_rate, "a positive number")
        require(0 <= self.warmup_steps < self.steps, "train", "warmup_steps", self.warmup_steps,
                f"an integer in [0, steps={self.steps})")
        require(0.0 <= self.final_learning_rate_fraction <= 1.0, "train", "final_learning_rate_fraction",
                self.final_learning_rate_fraction, "a number in [0, 1]")
        require(self.weight_decay >= 0, "train", "weight_decay", self.weight_decay, "a number >= 0")
        require(0 <= self.adam_b1 < 1, "train", "adam_b1", self.adam_b1, "a number in [0, 1)")
        require(0 <= self.adam_b2 < 1, "train", "adam_b2", self.adam_b2, "a number in [0, 1)")
        require(self.adam_eps > 0, "train", "adam_eps", self.adam_eps, "a positive number")
        require(self.grad_clip > 0, "train", "grad_clip", self.grad_clip, "a positive number")
        require(self.grad_accumulation >= 1 and self.batch_size % self.grad_accumulation == 0, "train",
                "grad_accumulation", self.grad_accumulation, f"a divisor of batch_size={self.batch_size}")
        require(self.compute_dtype in COMPUTE_DTYPES, "train", "compute_dtype", self.compute_dtype,
                f"one of {COMPUTE_DTYPES}")
        require(self.attention_impl in ATTENTION_IMPLS, "train", "attention_impl", self.attention_impl,
                f"one of {ATTENTION_IMPLS}")
        require(self.seed >= 0, "train", "seed", self.seed, "an integer >= 0")
        available = len(jax.devices())
        require(0 <= self.devices <= available, "train", "devices", self.devices,
                f"0 (all) or 1..{available} (devices visible to JAX)")
        per_step = self.batch_size // self.grad_accumulation
        require(per_step % self.num_devices() == 0, "train", "batch_size", self.batch_size,
                f"a multiple of grad_accumulation x devices = {self.grad_accumulation} x {self.num_devices()}")
        require(0.0 < self.validation_fraction < 1.0, "train", "validation_fraction", self.validation_fraction,
                "a number in (0, 1)")
        require(self.log_every >= 1, "train", "log_every", self.log_every, "an integer >= 1")
        require(self.eval_every >= -1, "train", "eval_every", self.eval_every, "-1 (never), 0 (at the end) or steps")
        require(self.eval_sequences >= 1, "train", "eval_sequences", self.eval_sequences, "an integer >= 1")
        require(self.checkpoint_every >= 0, "train", "checkpoint_every", self.checkpoint_every,
                "0 (at evaluations and the end) or a positive step count")
        require(self.keep_checkpoints >= 1, "train", "keep_checkpoints", self.keep_checkpoints, "an integer >= 1")
        return self

    def num_devices(self) -> int:
        return self.devices or len(jax.devices())

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.sequence_length


class TrainState(flax.struct.PyTreeNode):
    """Everything a run's future depends on besides the data cursor: params, AdamW state, step counter."""

    params: chex.ArrayTree
    opt_state: optax.OptState
    step: jax.Array  # [] int32

    @classmethod
    def create(cls, params: chex.ArrayTree, optimizer: optax.GradientTransformation) -> TrainState:
        """Step 0: `params` with a fresh optimizer state."""
        return cls(params=params, opt_state=optimizer.init(params), step=jnp.zeros((), jnp.int32))

    def apply_gradients(self, optimizer: optax.GradientTransformation, grads: chex.ArrayTree) -> TrainState:
        """One optimizer step: new params and optimizer state, step + 1."""
        updates, opt_state = optimizer.update(grads, self.opt_state, self.params)
        return TrainState(params=optax.apply_updates(self.params, updates), opt_state=opt_state, step=self.step + 1)


def resolve_model(config: TrainConfig, model: ModelConfig | None = None) -> ModelConfig:
    """The preset named by config.model (or `model` if given) with the run's compute dtype and attention impl."""
    base = model if model is not None else model_config(config.model)
    return dataclasses.replace(base, compute_dtype=config.compute_dtype,
                               attention_impl=config.attention_impl).validate()


def load_corpus(config: TrainConfig) -> Corpus:
    if config.corpus:
        return Corpus.from_directory(config.corpus, config.validation_fraction)
    return Corpus.python_stdlib(config.validation_fraction)


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=config.learning_rate, warmup_steps=config.warmup_steps,
        decay_steps=config.steps, end_value=config.learning_rate * config.final_learning_rate_fraction)


def decay_mask(params: chex.ArrayTree) -> chex.ArrayTree:
    """True for matrices (kernels, embeddings); norm scales and biases are not decayed."""
    def is_matrix(path: tuple[Any, ...], _: Any) -> bool:
        return getattr(path[-1], "key", None) in ("kernel", "embedding")

    return jax.tree_util.tree_map_with_path(is_matrix, params)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(learning_rate_schedule(config), b1=config.adam_b1, b2=config.adam_b2, eps=config.adam_eps,
                    weight_decay=config.weight_decay, mask=decay_mask),
    )


def init_train_state(config: TrainConfig, model: ModelConfig) -> TrainState:
    return TrainState.create(init_params(model, jax.random.PRNGKey(config.seed)), make_optimizer(config))


def next_token_loss(model: ModelConfig, params: chex.ArrayTree, tokens: jax.Array) -> jax.Array:
    """Mean cross-entropy (nats/token) of tokens[:, 1:] given tokens[:, :-1]; tokens: [batch, seq + 1]."""
    logits = LanguageModel(model).apply({"params": params}, tokens[:, :-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()


def make_train_step(config: TrainConfig, model: ModelConfig) -> Callable[[TrainState, jax.Array], tuple[TrainState, dict]]:
    """One AdamW update on tokens [batch, seq + 1] (micro-batched when grad_accumulation > 1)."""
    optimizer = make_optimizer(config)
    schedule = learning_rate_schedule(config)
    loss_and_grad = jax.value_and_grad(lambda params, tokens: next_token_loss(model, params, tokens))

    def accumulated(params: chex.ArrayTree, tokens: jax.Array) -> tuple[jax.Array, chex.ArrayTree]:
        if config.grad_accumulation == 1:
            return loss_and_grad(params, tokens)
        micro = tokens.reshape(config.grad_accumulation, -1, tokens.shape[-1])

        def add(total, micro_tokens):
            loss, grads = loss_and_grad(params, micro_tokens)
            return jax.tree.map(jnp.add, total, (loss, grads)), None

        zeros = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
        total, _ = jax.lax.scan(add, zeros, micro)
        return jax.tree.map(lambda x: x / config.grad_accumulation, total)

    def train_step(state: TrainState, tokens: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        chex.assert_shape(tokens, (config.batch_size, config.sequence_length + 1))
        loss, grads = accumulated(state.params, tokens)
        metrics = {"loss": loss, "grad_norm": optax.global_norm(grads), "learning_rate": schedule(state.step)}
        return state.apply_gradients(optimizer, grads), metrics

    return train_step


def data_mesh(num_devices: int) -> Mesh:
    """A 1-D Mesh named DATA_AXIS over the first num_devices devices."""
    return Mesh(np.array(jax.devices()[:num_devices]), (DATA_AXIS,))


def make_chunk_fn(config: TrainConfig, model: ModelConfig, mesh: Mesh):
    """jit of a `lax.scan` of train steps over batches [num_steps, batch, seq + 1] split along batch over the mesh."""
    train_step = make_train_step(config, model)
    replicated = NamedSharding(mesh, PartitionSpec())
    batch_split = NamedSharding(mesh, PartitionSpec(None, DATA_AXIS))

    def chunk(state: TrainState, batches: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        return jax.lax.scan(train_step, state, batches)

    return jax.jit(chunk, in_shardings=(replicated, batch_split), out_shardings=(replicated, replicated),
                   donate_argnums=0), batch_split, replicated


@dataclasses.dataclass
class LMRunResult:
    """What train_lm hands back: the final TrainState, the records written, and where."""

    state: TrainState
    model: ModelConfig
    records: list[dict[str, Any]]
    run_dir: pathlib.Path
    completed: bool


def _every(every: int, log_every: int, default: int) -> int:
    """A step interval rounded to a multiple of log_every (0 -> default, negative kept)."""
    if every < 0:
        return every
    if every == 0:
        return default
    return max(log_every, round(every / log_every) * log_every)


def write_run_config(run_dir: pathlib.Path, config: TrainConfig, model: ModelConfig, corpus: Corpus,
                     num_parameters: int) -> None:
    payload = {"kind": RUN_KIND, "train": dataclasses.asdict(config), "model": dataclasses.asdict(model),
               "num_parameters": num_parameters, "corpus": corpus.describe()}
    (run_dir / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def read_run_config(run_dir: str | pathlib.Path) -> tuple[TrainConfig, ModelConfig]:
    """The TrainConfig and ModelConfig stored in an LM run directory."""
    stored = read_config(run_dir)
    if stored.get("kind") != RUN_KIND:
        raise ValueError(f"{run_dir} is not a language-model run directory (config.json has no kind='lm')")
    return TrainConfig(**stored["train"]), model_config_from_dict(stored["model"])


def train_lm(config: TrainConfig, run_dir: str | pathlib.Path, *, model: ModelConfig | None = None,
             resume: bool = False, overwrite: bool = False, max_chunks: int | None = None) -> LMRunResult:
    """Trains for config.steps steps into run_dir; resume continues bit-for-bit from the last checkpoint.

    model overrides the preset named by config.model. max_chunks stops after that many log intervals
    in this call (to test interruption).
    """
    config.validate()
    model = resolve_model(config, model)
    run_dir = pathlib.Path(run_dir)
    corpus = load_corpus(config)
    prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    if not resume:
        for name in EVAL_ARTIFACTS:
            (run_dir / name).unlink(missing_ok=True)

    mesh = data_mesh(config.num_devices())
    chunk_fn, batch_split, replicated = make_chunk_fn(config, model, mesh)
    state = jax.jit(lambda: init_train_state(config, model), out_shardings=replicated)()
    stream = PackedStream(corpus, corpus.train_files, config.batch_size, config.sequence_length, config.seed)
    checkpointer = Checkpointer(run_dir / CHECKPOINT_DIR, keep=config.keep_checkpoints)
    step, wall_offset = 0, 0.0
    if resume:
        state, metadata = checkpointer.restore(state)
        state = jax.device_put(state, replicated)
        step, wall_offset = int(metadata["updates"]), float(metadata["wall_time"])
        stream.restore(metadata["data"])
        truncate_metrics(run_dir, step)
    else:
        write_run_config(run_dir, config, model, corpus, count_parameters(state.params))

    validation = jax.device_put(
        packed_windows(corpus, corpus.validation_files, config.sequence_length, config.eval_sequences), replicated)
    evaluate = jax.jit(lambda params, tokens: mean_loss(model, params, tokens, config.batch_size))
    eval_every = _every(config.eval_every, config.log_every, config.steps)
    checkpoint_every = _every(config.checkpoint_every, config.log_every,
                              eval_every if eval_every > 0 else config.steps)
    writer = MetricsWriter(run_dir, tensorboard=config.tensorboard, step_key="tokens")
    progress = Progress(config.steps * config.tokens_per_step, step * config.tokens_per_step,
                        enabled=config.progress, unit="tokens", metric="loss", metric_label="loss",
                        rate_key="tokens_per_s", metric_digits=3)
    records: list[dict[str, Any]] = []
    chunks_run = 0
    start = time.monotonic()
    try:
        while step < config.steps and (max_chunks is None or chunks_run < max_chunks):
            length = min(config.log_every, config.steps - step)
            batches = np.stack([stream.next_batch() for _ in range(length)])
            chunk_start = time.monotonic()
            state, metrics = chunk_fn(state, jax.device_put(batches, batch_split))
            metrics = jax.device_get(metrics)
            chunk_seconds = time.monotonic() - chunk_start
            step += length
            chunks_run += 1
            finished = step >= config.steps
            record: dict[str, Any] = {
                "updates": step, "tokens": step * config.tokens_per_step,
                "loss": float(np.mean(metrics["loss"])), "grad_norm": float(np.mean(metrics["grad_norm"])),
                "learning_rate": float(metrics["learning_rate"][-1]),
            }
            if eval_every >= 0 and (finished or (eval_every > 0 and step % eval_every == 0)):
                record["val_loss"] = float(evaluate(state.params, validation))
            record["wall_time"] = wall_offset + time.monotonic() - start
            record["tokens_per_s"] = length * config.tokens_per_step / max(chunk_seconds, 1e-9)
            writer.write(record)
            records.append(record)
            progress.update(record["tokens"], record)
            if finished or step % checkpoint_every == 0:
                checkpointer.save(step, state, {"updates": step, "wall_time": record["wall_time"],
                                                "data": stream.state()})
    finally:
        progress.close()
        writer.close()
        checkpointer.close()
    completed = step >= config.steps
    if completed:
        plot_runs([run_dir], run_dir / PLOT_FILE, metric="loss", x_key="tokens",
                  title=f"{config.model}: training loss")
    return LMRunResult(state=state, model=model, records=records, run_dir=run_dir, completed=completed)


def resume_lm(run_dir: str | pathlib.Path, **kwargs: Any) -> LMRunResult:
    """Continues the run in run_dir with the configuration stored there."""
    config, model = read_run_config(run_dir)
    return train_lm(config, run_dir, model=model, resume=True, **kwargs)


def load_params(run_dir: str | pathlib.Path, step: int | None = None) -> tuple[ModelConfig, chex.ArrayTree, int]:
    """(model config, float32 params, step) of the latest (or given) checkpoint of an LM run directory."""
    config, model = read_run_config(run_dir)
    abstract = jax.eval_shape(lambda: init_train_state(config, model))
    abstract = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                              sharding=jax.sharding.SingleDeviceSharding(
                                                                  jax.devices()[0])), abstract)
    state, metadata = Checkpointer(pathlib.Path(run_dir) / CHECKPOINT_DIR).restore(abstract, step)
    return model, state.params, int(metadata["updates"])
