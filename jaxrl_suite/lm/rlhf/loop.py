"""The online RLHF loops: sync with off-policy N, and async with a generator thread ahead of the learner.

Round r samples 2 responses to each of generation_batch prompts with the params after round max(0, r - lag), then N updates.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.lm.rlhf.sampling import eos_rate, evaluate_policy, make_eval_set, pair_rows, sample_rows
from jaxrl_suite.lm.rlhf.sft import load_sft, read_sft_config
from jaxrl_suite.lm.rlhf.task import RESPONSE_WIDTH, TOP_K, WORDS, make_prompts, score_rows
from jaxrl_suite.lm.rlhf.updates import ALGOS, make_update
from jaxrl_suite.lm.train import TrainConfig, TrainState, make_optimizer
from jaxrl_suite.runner.checkpoints import Checkpointer
from jaxrl_suite.runner.metrics_log import MetricsWriter, truncate_metrics
from jaxrl_suite.runner.progress import Progress
from jaxrl_suite.runner.run_dir import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    check_run_dir,
    prepare_run_dir,
    read_config,
)
from jaxrl_suite.validation import require, require_defaults

ONLINE_RUN_KIND = "online_rlhf"
MODES = ("sync", "async")
IDEAL_RESPONSE_BYTES = TOP_K * (max(len(word) for word in WORDS) + 1)
"""12: the longest ideal response (TOP_K words and the spaces between them) plus its EOS."""


@dataclasses.dataclass(frozen=True)
class OnlineConfig:
    """One online RLHF run from an SFT model. Defaults: the paper's constants (2 samples, T = 0.7, beta = 0.1)."""

    algo: str = "dpo"
    """dpo (online DPO), rloo (REINFORCE leave-one-out, k = 2) or best-of-2 (SFT on the better response)."""
    mode: str = "sync"
    """sync: generate, then learn; async: a generator thread samples the next rounds while the learner trains."""
    off_policy_n: int = 1
    """N: minibatches per round, all sampled with one set of params; the i-th update of a round is i-1 steps stale."""
    max_staleness: int = 1
    """async only: rounds the generator may run ahead; round r samples with the params after round r - S."""
    generation_batch: int = 32
    """Prompts per round (N minibatches of generation_batch / N prompts, 2 responses each)."""
    episodes: int = 2048
    """Prompts over the whole run (a multiple of generation_batch)."""
    temperature: float = 0.7
    """Sampling temperature; the policy and the reference divide their logits by it."""
    beta: float = 0.1
    """DPO beta."""
    rloo_kl_coef: float = 0.05
    """rloo: reward = gold score - coef * (sampler log-prob - SFT log-prob)."""
    learning_rate: float = 3e-4
    """AdamW peak learning rate (3e-4: four of four pilot seeds of the default SFT model improved at it)."""
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    response_width: int = RESPONSE_WIDTH
    """Sampled bytes per response (the ideal response plus EOS must fit)."""
    eval_every: int = 8
    """Rounds between evaluations (win rate, KL to SFT); 0 = only before the first and after the last."""
    eval_prompts: int = 256
    checkpoint_every: int = 0
    """Rounds between checkpoints; 0 = at each evaluation and at the end."""
    seed: int = 0
    tensorboard: bool = False
    progress: bool = True

    def validate(self) -> OnlineConfig:
        require(self.algo in ALGOS, "dpo", "algo", self.algo, f"one of {ALGOS}")
        require(self.mode in MODES, "dpo", "mode", self.mode, f"one of {MODES}")
        require(self.off_policy_n >= 1, "dpo", "off_policy_n", self.off_policy_n, "an integer >= 1")
        require(self.generation_batch >= 1, "dpo", "generation_batch", self.generation_batch, "an integer >= 1")
        require(self.generation_batch % self.off_policy_n == 0, "dpo", "off_policy_n", self.off_policy_n,
                f"a divisor of generation_batch={self.generation_batch}")
        require(self.max_staleness >= 0, "dpo", "max_staleness", self.max_staleness, "an integer >= 0")
        if self.mode == "sync":
            require_defaults(self, ["max_staleness"], "dpo", "unless mode='async'")
        require(self.episodes >= self.generation_batch and self.episodes % self.generation_batch == 0, "dpo",
                "episodes", self.episodes, f"a positive multiple of generation_batch={self.generation_batch}")
        require(self.temperature > 0, "dpo", "temperature", self.temperature, "a positive number")
        require(self.beta > 0, "dpo", "beta", self.beta, "a positive number")
        require(self.rloo_kl_coef >= 0, "dpo", "rloo_kl_coef", self.rloo_kl_coef, "a number >= 0")
        require(self.response_width >= IDEAL_RESPONSE_BYTES, "dpo", "response_width", self.response_width,
                f"an integer >= {IDEAL_RESPONSE_BYTES} (the longest ideal response plus EOS)")
        require(self.eval_every >= 0, "dpo", "eval_every", self.eval_every, "0 (start and end) or a round count")
        require(self.eval_prompts >= 1, "dpo", "eval_prompts", self.eval_prompts, "an integer >= 1")
        require(self.checkpoint_every >= 0, "dpo", "checkpoint_every", self.checkpoint_every,
                "0 (at evaluations and the end) or a round count")
        require(self.seed >= 0, "dpo", "seed", self.seed, "an integer >= 0")
        self.train_config().validate()
        return self

    @property
    def rounds(self) -> int:
        return self.episodes // self.generation_batch

    @property
    def minibatch(self) -> int:
        return self.generation_batch // self.off_policy_n

    @property
    def lag(self) -> int:
        """Rounds between the params a round is sampled with and the learner's: S in async, 0 in sync."""
        return self.max_staleness if self.mode == "async" else 0

    def train_config(self) -> TrainConfig:
        """The optimizer settings in lm.train's TrainConfig (AdamW, warm-up + cosine over all updates, clipping)."""
        return TrainConfig(batch_size=2 * self.minibatch, steps=self.rounds * self.off_policy_n,
                           learning_rate=self.learning_rate, warmup_steps=self.warmup_steps,
                           weight_decay=self.weight_decay, grad_clip=self.grad_clip, seed=self.seed)


class RoundBatch(NamedTuple):
    """One round's samples split into N minibatches: rows int32 [N, 2B, T], scores and sampler log-probs [N, 2B]."""

    round: int
    version: int
    rows: np.ndarray
    scores: np.ndarray
    sampler_logprobs: np.ndarray
    generation_s: float


def round_prompts(config: OnlineConfig, round_index: int) -> list[str]:
    """The prompts of one round: make_prompts with a seed drawn from SeedSequence([seed, round])."""
    seed = int(np.random.SeedSequence([config.seed, round_index]).generate_state(1)[0])
    return make_prompts(config.generation_batch, seed)


def make_round_generator(config: OnlineConfig, model, prompt_width: int
                         ) -> Callable[[int, chex.ArrayTree, int], RoundBatch]:
    """generate(round, params, version): sample, score under the gold reward, split into N minibatches."""
    def generate_round(round_index: int, params: chex.ArrayTree, version: int) -> RoundBatch:
        start = time.monotonic()
        texts, prompt_tokens = pair_rows(round_prompts(config, round_index), prompt_width)
        key = jax.random.fold_in(jax.random.PRNGKey(config.seed), round_index)
        rows, sampler_logprobs = sample_rows(params, model, jnp.asarray(prompt_tokens), key,
                                             config.response_width, config.temperature)
        rows, sampler_logprobs = np.asarray(rows), np.asarray(sampler_logprobs)
        scores = score_rows(texts, rows, prompt_width)
        n = config.off_policy_n
        return RoundBatch(round_index, version, rows.reshape(n, -1, rows.shape[1]), scores.reshape(n, -1),
                          sampler_logprobs.reshape(n, -1), time.monotonic() - start)

    return generate_round


class BatchSource:
    """Rounds for the learner. Sync: sampled on request. Async: a generator thread samples round r with the params
    published after round r - lag into a bounded queue (at most lag rounds ahead), while the learner trains.

    Params are handed over as the learner's immutable jax arrays (the update never donates them).
    """

    def __init__(self, generate_round, versions: dict[int, chex.ArrayTree], lag: int, start_round: int,
                 rounds: int, asynchronous: bool):
        self.generate_round, self.versions, self.lag = generate_round, versions, lag
        self.asynchronous = asynchronous
        self.condition = threading.Condition()
        self.stopping = threading.Event()
        self.queue: queue.Queue = queue.Queue(maxsize=max(lag, 1))
        self.thread = None
        if asynchronous:
            self.thread = threading.Thread(target=self._produce, args=(start_round, rounds), daemon=True,
                                           name="rlhf-generator")
            self.thread.start()

    def _wait_for(self, version: int) -> chex.ArrayTree | None:
        with self.condition:
            self.condition.wait_for(lambda: version in self.versions or self.stopping.is_set())
            return None if self.stopping.is_set() else self.versions[version]

    def _put(self, item: Any) -> None:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _produce(self, start_round: int, rounds: int) -> None:
        try:
            for round_index in range(start_round, rounds):
                version = max(0, round_index - self.lag)
                params = self._wait_for(version)
                if params is None:
                    return
                self._put(self.generate_round(round_index, params, version))
        except BaseException as error:  # handed to the learner, which raises it
            self._put(error)

    def next_round(self, round_index: int) -> RoundBatch:
        if not self.asynchronous:
            version = max(0, round_index - self.lag)
            return self.generate_round(round_index, self.versions[version], version)
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def publish(self, version: int, params: chex.ArrayTree) -> None:
        """Params after `version` rounds; versions no later round needs are dropped."""
        with self.condition:
            self.versions[version] = params
            for old in [v for v in self.versions if v < version - self.lag]:
                del self.versions[old]
            self.condition.notify_all()

    def lagged_params(self, rounds_done: int) -> tuple[chex.ArrayTree, ...]:
        """The params rounds rounds_done .. rounds_done + lag - 1 sample with (what a checkpoint must keep)."""
        with self.condition:
            return tuple(self.versions[max(0, rounds_done - self.lag + j)] for j in range(self.lag))

    def close(self) -> None:
        self.stopping.set()
        with self.condition:
            self.condition.notify_all()
        if self.thread is not None:
            self.thread.join()


@dataclasses.dataclass
class OnlineResult:
    state: TrainState
    records: list[dict[str, Any]]
    run_dir: pathlib.Path
    completed: bool


def write_online_config(run_dir: pathlib.Path, config: OnlineConfig, sft_dir: pathlib.Path) -> None:
    from jaxrl_suite.machine import machine_info

    payload = {"kind": ONLINE_RUN_KIND, "online": dataclasses.asdict(config), "sft_dir": str(sft_dir.absolute()),
               "machine": machine_info()}
    (run_dir / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def read_online_config(run_dir: str | pathlib.Path) -> tuple[OnlineConfig, pathlib.Path]:
    stored = read_config(run_dir)
    require(stored.get("kind") == ONLINE_RUN_KIND, "dpo", "resume", str(run_dir),
            f"a run directory of `jaxrl lm dpo` (config.json of kind {ONLINE_RUN_KIND!r})")
    return OnlineConfig(**stored["online"]), pathlib.Path(stored["sft_dir"])


def check_online_run(config: OnlineConfig, sft_dir: str | pathlib.Path, run_dir: str | pathlib.Path, *,
                     resume: bool = False, overwrite: bool = False) -> None:
    """Every refusal of `run_online`, before anything is compiled or created (one-line ValueError or RunDirectoryError)."""
    config.validate()
    read_sft_config(sft_dir)
    check_run_dir(pathlib.Path(run_dir), resume=resume, overwrite=overwrite)


def _checkpoint_tree(state: TrainState, lagged: tuple[chex.ArrayTree, ...]) -> dict[str, Any]:
    return {"state": state, "lagged": lagged} if lagged else {"state": state}


def _record(config: OnlineConfig, update_index: int, batch: RoundBatch, minibatch: int, metrics: dict[str, Any],
            learning_s: float, prompt_width: int) -> dict[str, Any]:
    done = update_index + 1
    record = {"updates": done, "episodes": done * config.minibatch, "round": batch.round,
              "staleness": update_index - config.off_policy_n * batch.version}
    record.update({name: float(value) for name, value in metrics.items()})
    record.update({"gold_score": float(batch.scores[minibatch].mean()),
                   "eos_rate": eos_rate(batch.rows[minibatch], prompt_width),
                   "generation_s": batch.generation_s, "learning_s": learning_s})
    return record


def compile_programs(generate_round, update, state: TrainState, reference_params: chex.ArrayTree,
                     round_index: int) -> float:
    """Runs one round's sampling and one update and discards them (both are pure), so that compilation is
    not counted in generation_s, learning_s or wall_time; returns the seconds it took."""
    start = time.monotonic()
    batch = generate_round(round_index, reference_params, 0)
    jax.block_until_ready(update(state, reference_params, jnp.asarray(batch.rows[0]), jnp.asarray(batch.scores[0]),
                                 jnp.asarray(batch.sampler_logprobs[0])))
    return time.monotonic() - start


def run_online(config: OnlineConfig, sft_dir: str | pathlib.Path, run_dir: str | pathlib.Path, *,
               resume: bool = False, overwrite: bool = False, max_rounds: int | None = None) -> OnlineResult:
    """Online RLHF from the SFT run in sft_dir into run_dir; resume continues exactly from the last checkpoint.

    max_rounds stops after that many rounds in this call (to test interruption).
    """
    sft_dir, run_dir = pathlib.Path(sft_dir), pathlib.Path(run_dir)
    check_online_run(config, sft_dir, run_dir, resume=resume, overwrite=overwrite)
    sft_config, model, reference_params = load_sft(sft_dir)
    prompt_width = sft_config.prompt_width
    prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    optimizer = make_optimizer(config.train_config())
    update = make_update(config.algo, model, optimizer, prompt_width, config.temperature, config.beta,
                         config.rloo_kl_coef)
    # Committed to the device, as the update's outputs are: the second update then reuses the first's program.
    state = jax.device_put(TrainState.create(reference_params, optimizer), jax.devices()[0])
    checkpointer = Checkpointer(run_dir / CHECKPOINT_DIR, keep=2)
    start_round, wall_offset, eval_offset = 0, 0.0, 0.0
    versions: dict[int, chex.ArrayTree] = {0: reference_params}
    if resume:
        template = _checkpoint_tree(state, (reference_params,) * config.lag)
        restored, metadata = checkpointer.restore(template)
        state, start_round = restored["state"], int(metadata["rounds"])
        wall_offset, eval_offset = float(metadata["wall_time"]), float(metadata["eval_time"])
        versions = {max(0, start_round - config.lag + j): params for j, params in enumerate(restored.get("lagged", ()))}
        versions[start_round] = state.params
        truncate_metrics(run_dir, int(metadata["updates"]))
    else:
        write_online_config(run_dir, config, sft_dir)

    eval_set = make_eval_set(config.eval_prompts, prompt_width)
    writer = MetricsWriter(run_dir, tensorboard=config.tensorboard, step_key="episodes")
    progress = Progress(config.episodes, start_round * config.generation_batch, enabled=config.progress,
                        unit="episodes", metric="win_rate", metric_label="win rate", rate_key="episodes_per_s",
                        metric_digits=3)
    records: list[dict[str, Any]] = []
    eval_time = eval_offset

    def evaluate(params: chex.ArrayTree) -> dict[str, float]:
        nonlocal eval_time
        eval_start = time.monotonic()
        result = evaluate_policy(model, params, eval_set, config.response_width, config.temperature,
                                 reference_params)
        eval_time += time.monotonic() - eval_start
        return {"win_rate": result["win_rate"], "eval_gold_score": result["gold_score"],
                "eval_eos_rate": result["eos_rate"], "eval_kl_to_sft": result["kl_to_sft"]}

    def write(record: dict[str, Any]) -> None:
        record.update(wall_time=wall_offset + time.monotonic() - start, eval_time=eval_time)
        writer.write(record)
        records.append(record)
        progress.update(record["episodes"], record)

    generate_round = make_round_generator(config, model, prompt_width)
    warmup_s = compile_programs(generate_round, update, state, reference_params, start_round)
    start = time.monotonic()
    if start_round == 0:
        write({"updates": 0, "episodes": 0, "warmup_s": warmup_s, **evaluate(reference_params)})
    source = BatchSource(generate_round, versions, config.lag, start_round, config.rounds,
                         asynchronous=config.mode == "async")
    round_index = start_round
    try:
        last_round = config.rounds if max_rounds is None else min(config.rounds, start_round + max_rounds)
        while round_index < last_round:
            batch = source.next_round(round_index)
            for minibatch in range(config.off_policy_n):
                learn_start = time.monotonic()
                state, metrics = update(state, reference_params, jnp.asarray(batch.rows[minibatch]),
                                        jnp.asarray(batch.scores[minibatch]),
                                        jnp.asarray(batch.sampler_logprobs[minibatch]))
                metrics = jax.device_get(metrics)
                record = _record(config, round_index * config.off_policy_n + minibatch, batch, minibatch, metrics,
                                 time.monotonic() - learn_start, prompt_width)
                if minibatch < config.off_policy_n - 1:
                    write(record)
            round_index += 1
            source.publish(round_index, state.params)
            finished = round_index == config.rounds
            evaluating = finished or (config.eval_every > 0 and round_index % config.eval_every == 0)
            if evaluating:
                record.update(evaluate(state.params))
            write(record)
            checkpoint_every = config.checkpoint_every or config.eval_every or config.rounds
            if evaluating or round_index % checkpoint_every == 0 or round_index == last_round:
                checkpointer.save(record["updates"], _checkpoint_tree(state, source.lagged_params(round_index)),
                                  {"rounds": round_index, "updates": record["updates"],
                                   "wall_time": record["wall_time"], "eval_time": eval_time})
    finally:
        source.close()
        progress.close()
        writer.close()
        checkpointer.close()
    return OnlineResult(state=state, records=records, run_dir=run_dir, completed=round_index == config.rounds)


def resume_online(run_dir: str | pathlib.Path, **kwargs: Any) -> OnlineResult:
    """Continues the run in run_dir with the configuration and SFT run stored there."""
    config, sft_dir = read_online_config(run_dir)
    return run_online(config, sft_dir, run_dir, resume=True, **kwargs)
