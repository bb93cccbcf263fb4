"""The DyMo objective L_FC + sp_weight * L_SP on FC and SP rows, its batch order and a jitted AdamW step.

DyMo (arXiv 2506.02918); each term is lm.finetune.masked_sft_loss counted on its own target field only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator

import chex
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl_suite.lm.finetune import masked_sft_loss
from jaxrl_suite.lm.train import TrainConfig, TrainState, learning_rate_schedule, make_optimizer
from jaxrl_suite.models import ModelConfig, init_params
from jaxrl_suite.tooluse.fields import FIELD_WIDTHS, FieldWidths, check_field_widths
from jaxrl_suite.tooluse.rows import Rows
from jaxrl_suite.tooluse.tasks import MAX_SLOTS
from jaxrl_suite.tooluse.world import KEY_POOL
from jaxrl_suite.validation import rebuild_nested_configs, require


def _require_sp_weight(owner: str, sp_weight: object) -> None:
    is_number = isinstance(sp_weight, int | float) and not isinstance(sp_weight, bool)
    require(is_number and math.isfinite(sp_weight) and sp_weight >= 0, owner, "sp_weight", sp_weight,
            "a finite number >= 0 (0 = FC only)")


@dataclasses.dataclass(frozen=True)
class DymoConfig:
    """One DyMo post-training run. The FC rows of a step depend on (seed, batch_size, steps) only, never on
    sp_weight, so sp_weight 0 and 1 train on the same FC rows in the same order for the same steps; with
    sp_weight > 0 each step adds the SP rows of the same tasks."""

    sp_weight: float = 1.0
    """lambda_SP: weight of the state-prediction loss; 0 trains FC only (no SP rows are built or seen)."""
    batch_size: int = 16
    """FC rows per step (and SP rows, when sp_weight > 0)."""
    steps: int = 1000
    learning_rate: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    """Parameter initialization and the task order."""
    widths: FieldWidths = FIELD_WIDTHS
    """Field widths of the rows; checked against every key of the pool and the most slots a task has."""

    def __post_init__(self) -> None:
        rebuild_nested_configs(self)
        _require_sp_weight("DymoConfig", self.sp_weight)
        require(type(self.batch_size) is int and self.batch_size >= 1, "DymoConfig", "batch_size",
                self.batch_size, "an integer >= 1")
        require(type(self.steps) is int and self.steps >= 1, "DymoConfig", "steps", self.steps, "an integer >= 1")
        require(type(self.warmup_steps) is int and 0 <= self.warmup_steps < self.steps, "DymoConfig",
                "warmup_steps", self.warmup_steps, f"an integer in [0, steps={self.steps})")
        require(type(self.seed) is int and self.seed >= 0, "DymoConfig", "seed", self.seed, "an integer >= 0")
        require(isinstance(self.widths, FieldWidths), "DymoConfig", "widths", self.widths, "a FieldWidths")
        check_field_widths(self.widths, KEY_POOL, MAX_SLOTS)
        self.optimizer_config()  # learning_rate, weight_decay and grad_clip are checked by TrainConfig

    @property
    def uses_sp(self) -> bool:
        return self.sp_weight > 0

    def optimizer_config(self) -> TrainConfig:
        """The lm.train config whose make_optimizer / learning_rate_schedule this run uses."""
        return TrainConfig(steps=self.steps, learning_rate=self.learning_rate, warmup_steps=self.warmup_steps,
                           weight_decay=self.weight_decay, grad_clip=self.grad_clip, seed=self.seed).validate()


class DymoBatch(flax.struct.PyTreeNode):
    """One step's rows. fc_tokens, fc_mask: [batch, fc_width]; sp_tokens, sp_mask: [batch_sp, sp_width], or
    None for an FC-only step. Masks are True on the target field only (rows.Rows.mask)."""

    fc_tokens: jax.Array
    fc_mask: jax.Array
    sp_tokens: jax.Array | None = None
    sp_mask: jax.Array | None = None


def dymo_loss(model: ModelConfig, params: chex.ArrayTree, batch: DymoBatch, sp_weight: float | jax.Array
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_FC + sp_weight * L_SP, each the mean cross-entropy (nats/token) over its own target tokens.

    Returns (loss float32 [], metrics): fc_loss, sp_loss, and the tokens seen of each kind, fc_target_tokens /
    sp_target_tokens (masked targets) and fc_row_tokens / sp_row_tokens (every token of the rows); the SP
    entries are 0 for a batch without SP rows, and for a Python sp_weight of 0, where the SP rows are not looked
    at: that is the FC-only graph, so loss and gradients equal the FC-only ones bit for bit (with SP terms times
    zero they would differ in float rounding, the gradient sums being ordered differently). sp_weight may be
    traced (a sweep); a Python number is checked.
    """
    if isinstance(sp_weight, int | float):
        _require_sp_weight("dymo_loss", sp_weight)
        if sp_weight == 0:
            batch = batch.replace(sp_tokens=None, sp_mask=None)
    fc_loss, fc_count = masked_sft_loss(model, params, batch.fc_tokens, batch.fc_mask)
    metrics = {"fc_loss": fc_loss, "fc_target_tokens": fc_count,
               "fc_row_tokens": jnp.asarray(batch.fc_tokens.size, jnp.int32)}
    if batch.sp_tokens is None:
        zero = jnp.zeros((), jnp.int32)
        return fc_loss, {**metrics, "sp_loss": jnp.zeros((), jnp.float32), "sp_target_tokens": zero,
                         "sp_row_tokens": zero}
    sp_loss, sp_count = masked_sft_loss(model, params, batch.sp_tokens, batch.sp_mask)
    metrics |= {"sp_loss": sp_loss, "sp_target_tokens": sp_count,
                "sp_row_tokens": jnp.asarray(batch.sp_tokens.size, jnp.int32)}
    return fc_loss + sp_weight * sp_loss, metrics


def task_order(num_tasks: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """Task indices of every step, int64 [steps, batch_size]: seeded permutations of range(num_tasks), one per
    epoch, concatenated (so every task comes once before any comes twice)."""
    require(type(num_tasks) is int and num_tasks >= 1, "task_order", "num_tasks", num_tasks, "an integer >= 1")
    rng = np.random.default_rng(seed)
    epochs = -(-steps * batch_size // num_tasks)
    order = np.concatenate([rng.permutation(num_tasks) for _ in range(epochs)])
    return order[:steps * batch_size].reshape(steps, batch_size)


def training_batches(config: DymoConfig, fc_rows: Rows, sp_rows: Rows | None = None) -> Iterator[DymoBatch]:
    """config.steps batches in task_order; SP rows (of the same tasks) only when config.uses_sp.

    fc_rows and sp_rows hold one row per task, in the same task order (rows.encode_fc_rows / encode_sp_rows).
    """
    num_tasks = fc_rows.tokens.shape[0]
    if config.uses_sp:
        require(sp_rows is not None and sp_rows.tokens.shape[0] == num_tasks, "training_batches", "sp_rows",
                None if sp_rows is None else f"<{sp_rows.tokens.shape[0]} rows>",
                f"one SP row per task ({num_tasks}) when sp_weight={config.sp_weight} > 0")
    for indices in task_order(num_tasks, config.batch_size, config.steps, config.seed):
        if config.uses_sp:
            yield DymoBatch(fc_rows.tokens[indices], fc_rows.mask[indices], sp_rows.tokens[indices],
                            sp_rows.mask[indices])
        else:
            yield DymoBatch(fc_rows.tokens[indices], fc_rows.mask[indices])


def init_train_state(config: DymoConfig, model: ModelConfig) -> TrainState:
    """Fresh parameters from config.seed with a fresh AdamW state."""
    params = init_params(model, jax.random.PRNGKey(config.seed))
    return TrainState.create(params, make_optimizer(config.optimizer_config()))


def make_train_step(config: DymoConfig, model: ModelConfig
                    ) -> Callable[[TrainState, DymoBatch], tuple[TrainState, dict[str, jax.Array]]]:
    """A jitted AdamW step on dymo_loss (lm.train.make_optimizer: clipping, warm-up + cosine); its metrics
    are dymo_loss's plus loss, grad_norm and learning_rate."""
    optimizer = make_optimizer(config.optimizer_config())
    schedule = learning_rate_schedule(config.optimizer_config())
    loss_and_grad = jax.value_and_grad(lambda params, batch: dymo_loss(model, params, batch, config.sp_weight),
                                       has_aux=True)

    def train_step(state: TrainState, batch: DymoBatch) -> tuple[TrainState, dict[str, jax.Array]]:
        (loss, metrics), grads = loss_and_grad(state.params, batch)
        metrics |= {"loss": loss, "grad_norm": optax.global_norm(grads), "learning_rate": schedule(state.step)}
        return state.apply_gradients(optimizer, grads), metrics

    return jax.jit(train_step)
