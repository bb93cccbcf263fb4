"""`evaluate_run`: every LM evaluation of a trained run directory, written to eval.json, acp.json and figures.

Validation loss, per-position loss to 4x the training length, needle-in-a-haystack, and the ACP report.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxrl_suite.lm.acp import acp_report
from jaxrl_suite.lm.data import document_windows, packed_windows
from jaxrl_suite.lm.evaluate import extrapolation_summary, needle_report, position_losses
from jaxrl_suite.lm.plots import plot_needle, plot_position_losses
from jaxrl_suite.lm.train import load_corpus, load_params, read_run_config
from jaxrl_suite.runner.metrics_log import to_json_value
from jaxrl_suite.validation import require

EVAL_FILE = "eval.json"
ACP_FILE = "acp.json"


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What `jaxrl lm eval` measures; lengths are multiples of the run's training sequence length."""

    validation_sequences: int = 64
    """Packed validation windows of the training length for the validation loss."""
    documents: int = 32
    """Validation files (from their first byte) for the per-position loss curve."""
    extrapolation: int = 4
    """The per-position curve runs to this multiple of the training length (1x, 2x, 4x are reported)."""
    needle_lengths: tuple[int, ...] = (1, 2, 4)
    """Needle context lengths as multiples of the training length."""
    needle_depths: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    """Relative needle positions inside the haystack."""
    needle_trials: int = 8
    """Haystacks per (length, depth)."""
    acp: bool = True
    """Run the ACP report (FoX models only)."""
    acp_eps: float = float(np.exp(-10.0))
    """ACP tolerance (the paper's e^-10)."""
    acp_block_size: int = 64
    """Tile size for the ACP statistics and the pruned forward."""
    acp_sequences: int = 8
    """Document windows (at the extrapolation length) for the ACP report."""
    batch_size: int = 8
    """Sequences per forward pass."""
    seed: int = 0
    """Needle digits and haystack choice."""

    def validate(self) -> EvalConfig:
        for field in ("validation_sequences", "documents", "extrapolation", "needle_trials", "acp_sequences",
                      "batch_size", "acp_block_size"):
            value = getattr(self, field)
            require(value >= 1, "eval", field, value, "an integer >= 1")
        require(all(m >= 1 for m in self.needle_lengths), "eval", "needle_lengths", self.needle_lengths,
                "multiples >= 1 of the training length")
        require(all(0.0 <= d <= 1.0 for d in self.needle_depths) and self.needle_depths, "eval", "needle_depths",
                self.needle_depths, "a non-empty list of fractions in [0, 1]")
        require(0.0 < self.acp_eps < 1.0, "eval", "acp_eps", self.acp_eps, "a number in (0, 1)")
        return self


def evaluate_run(run_dir: str | pathlib.Path, config: EvalConfig = EvalConfig()) -> dict[str, Any]:
    """Evaluates the latest checkpoint of an LM run; writes eval.json (+ acp.json) and two figures there."""
    config.validate()
    run_dir = pathlib.Path(run_dir)
    train_config, _ = read_run_config(run_dir)
    model, params, step = load_params(run_dir)
    corpus = load_corpus(train_config)
    files = corpus.validation_files
    train_length = train_config.sequence_length
    longest = config.extrapolation * train_length

    validation = packed_windows(corpus, files, train_length, config.validation_sequences)
    validation_loss = float(position_losses(model, params, jnp.asarray(validation), config.batch_size).mean())
    documents = document_windows(corpus, files, longest, config.documents)
    curve = np.asarray(position_losses(model, params, jnp.asarray(documents), config.batch_size))
    needle = needle_report(model, params, corpus, files, [m * train_length for m in config.needle_lengths],
                           config.needle_depths, config.needle_trials, config.batch_size, config.seed)
    result: dict[str, Any] = {
        "step": step, "tokens": step * train_config.tokens_per_step, "model": train_config.model,
        "train_length": train_length, "validation_loss": validation_loss,
        "position_loss_documents": int(documents.shape[0]), "position_loss": curve,
        **extrapolation_summary(curve, train_length), "needle": needle,
    }
    if config.acp and model.attention == "forgetting":
        report = acp_report(model, params, documents[:config.acp_sequences], acp_eps=config.acp_eps,
                            block_size=config.acp_block_size, batch_size=config.batch_size)
        (run_dir / ACP_FILE).write_text(json.dumps(to_json_value_tree(report), indent=1) + "\n")
        result["acp"] = {k: v for k, v in report.items() if not isinstance(v, list)}
    (run_dir / EVAL_FILE).write_text(json.dumps(to_json_value_tree(result)) + "\n")
    plot_position_losses({train_config.model: curve}, train_length, run_dir / "per_position_loss.png")
    plot_needle({train_config.model: needle}, run_dir / "needle.png")
    return result


def to_json_value_tree(value: Any) -> Any:
    """Nested dicts/lists with numpy or jax leaves -> plain JSON values."""
    if isinstance(value, dict):
        return {key: to_json_value_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value_tree(item) for item in value]
    if isinstance(value, str):
        return value
    return to_json_value(value)


def read_evaluation(run_dir: str | pathlib.Path) -> dict[str, Any]:
    path = pathlib.Path(run_dir) / EVAL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `jaxrl lm eval {run_dir}` first")
    return json.loads(path.read_text())
