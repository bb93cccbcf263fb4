"""LEAST (learn to stop): end unproductive episodes early from Q-value and gradient statistics.

Implements arXiv 2506.13672 (ICML 2025) as pure functions over a small `LeastState`.

What is the paper's, and what is ours (the paper's text leaves several details open):
- Paper: per step index i in [0, L) two ring buffers over the last K episodes, B_Q[K, L] of
  the critic's Q(s_i, a_i) and B_G[K, L] of a gradient statistic at that step; K starts at 250;
  eps_i = median(B_Q[:, i]) and omega_i = median(B_G[:, i]) / G_i; the two-branch rule
  "if eps_i >= 0 stop when Q_i < omega_i * eps_i, else stop when Q_i < eps_i / omega_i",
  active only after a warm-up; stopped episodes are stored as truncated (bootstrapped);
  median rather than mean; an entropy-driven window size; more exploration noise when many
  recent episodes stopped early, along a capped sigmoid.
- Ours: the gradient statistic G is read from the learner when step i is collected:
  "td_loss" (default), the critic's TD loss of the latest gradient steps; "grad_norm", their
  critic gradient norm; or "td_error", |TD error| of the collected transition itself (much
  noisier: omega then swings with each transition and stops far more often);
  `omega_coefficient` scaling omega (the paper's scalar in [0.3, 0.6] is unconfirmed);
  `omega_max` capping omega (default 1: only episodes below eps_i can stop; B_G holds older,
  larger TD losses, so an uncapped omega drifts above 1 and stops above-median episodes);
  `patience` consecutive steps the rule must hold (default 1, the paper's rule);
  `spread_margin` m: the threshold is lowered by m times the column's spread (MAD for the
  median, standard deviation for the mean), so a Q near eps_i ~ 0 -- where the multiplicative
  margin of omega vanishes -- is not stopped (default 0, the paper's rule); steps taken
  before the learner's first gradient step are not recorded (`recording`: an untrained
  critic's Q is no value estimate and its G is 0);
  `min_episodes` before a step index's thresholds are trusted; the decision at step i takes
  effect on the env's next step (the TD error of step i needs s_{i+1}), so a stopped episode
  ends one step after the decision; the entropy is the Shannon entropy of a `entropy_bins`
  histogram of B_Q's active window over `entropy_columns` evenly spaced step indices, compared
  with the running mean of earlier checks, and a signed `window_change` is applied when it
  exceeds (1 + entropy_tolerance) times that mean; the exploration boost is
  noise_cap * sigmoid(noise_sharpness * (f - noise_midpoint)), f the fraction of the last
  `noise_episodes` episodes stopped before step noise_early_fraction * L.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import chex
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.validation import require

STATISTICS = ("median", "mean")
GRADIENT_STATISTICS = ("td_loss", "grad_norm", "td_error")


@dataclasses.dataclass(frozen=True)
class LeastConfig:
    """Every constant of the stop rule, the adaptive window and the exploration boost."""

    statistic: Literal["median", "mean"] = "median"
    """Threshold statistic over the window's episodes at a step index (the paper prefers median)."""
    gradient_statistic: Literal["td_loss", "grad_norm", "td_error"] = "td_loss"
    """G: the critic's latest TD loss, its latest gradient norm, or |TD error| of the step's transition."""
    start_steps: int = 50_000
    """Env steps (per seed) before any episode may be stopped: the warm-up t_start."""
    min_episodes: int = 10
    """Episodes that must have reached a step index before its thresholds are used."""
    window_init: int = 250
    """Initial window K: episodes the thresholds look back over."""
    window_min: int = 50
    """Smallest window the adaptation may reach."""
    window_max: int = 500
    """Largest window, and the ring buffers' size K_max."""
    window_change: int = -25
    """Episodes added to K (negative: removed) when the entropy of B_Q jumps."""
    window_every: int = 10_000
    """Env steps between entropy checks of the window (c)."""
    entropy_tolerance: float = 0.05
    """A check changes K when entropy > (1 + entropy_tolerance) * running mean entropy (gamma)."""
    entropy_bins: int = 64
    """Histogram bins of the entropy estimate."""
    entropy_columns: int = 64
    """Step indices (evenly spaced) whose B_Q values enter the entropy estimate."""
    omega_coefficient: float = 0.5
    """Scale of omega; < 1 makes stopping rarer in both branches."""
    omega_max: float = 1.0
    """Cap on omega after scaling: 1 never stops an episode whose Q is at or above eps_i; inf: no cap."""
    patience: int = 1
    """Consecutive steps the rule must hold before an episode is stopped (1: the paper's rule)."""
    spread_margin: float = 0.0
    """Spreads of B_Q[:, i] (MAD for median, std for mean) a Q must lie below the rule's threshold (0: the paper's)."""
    noise_cap: float = 0.2
    """Largest exploration-noise std the boost adds (paper: TD3 0.25-0.35, SAC 0.15-0.25)."""
    noise_episodes: int = 20
    """Recent episodes the boost looks at (m)."""
    noise_early_fraction: float = 0.5
    """An episode counts as stopped early if it stopped before step noise_early_fraction * L (e)."""
    noise_midpoint: float = 0.5
    """Fraction of early stops at which the boost reaches half its cap."""
    noise_sharpness: float = 10.0
    """Slope of the boost's sigmoid."""
    epsilon: float = 1e-8
    """Added to G before dividing."""

    def validate(self, owner: str = "least") -> LeastConfig:
        require(self.statistic in STATISTICS, owner, "statistic", self.statistic, f"one of {STATISTICS}")
        require(self.gradient_statistic in GRADIENT_STATISTICS, owner, "gradient_statistic",
                self.gradient_statistic, f"one of {GRADIENT_STATISTICS}")
        require(self.start_steps >= 0, owner, "start_steps", self.start_steps, "an env step count >= 0")
        require(self.min_episodes >= 1, owner, "min_episodes", self.min_episodes, "an integer >= 1")
        require(1 <= self.window_min <= self.window_max, owner, "window_min", self.window_min,
                f"an integer in [1, window_max={self.window_max}]")
        require(self.window_min <= self.window_init <= self.window_max, owner, "window_init", self.window_init,
                f"an integer in [window_min={self.window_min}, window_max={self.window_max}]")
        require(self.window_every >= 1, owner, "window_every", self.window_every, "an env step count >= 1")
        require(self.entropy_tolerance >= 0, owner, "entropy_tolerance", self.entropy_tolerance, "a number >= 0")
        require(self.entropy_bins >= 2, owner, "entropy_bins", self.entropy_bins, "an integer >= 2")
        require(self.entropy_columns >= 1, owner, "entropy_columns", self.entropy_columns, "an integer >= 1")
        require(self.omega_coefficient > 0, owner, "omega_coefficient", self.omega_coefficient, "a number > 0")
        require(self.omega_max > 0, owner, "omega_max", self.omega_max, "a number > 0 (inf: no cap)")
        require(self.spread_margin >= 0, owner, "spread_margin", self.spread_margin,
                "a number of spreads >= 0 (0: the paper's rule)")
        require(self.patience >= 1, owner, "patience", self.patience, "an integer >= 1 (consecutive steps)")
        require(self.noise_cap >= 0, owner, "noise_cap", self.noise_cap, "a std >= 0")
        require(self.noise_episodes >= 1, owner, "noise_episodes", self.noise_episodes, "an integer >= 1")
        require(0 < self.noise_early_fraction <= 1, owner, "noise_early_fraction", self.noise_early_fraction,
                "a fraction in (0, 1]")
        require(self.epsilon > 0, owner, "epsilon", self.epsilon, "a number > 0")
        return self


@struct.dataclass
class LeastState:
    """LEAST's statistics for one seed (N envs, episodes of at most L steps, K_max = window_max).

    q_history:        [K_max, L] float32 B_Q, NaN where an episode did not reach a step.
    gradient_history: [K_max, L] float32 B_G, same layout.
    history_position: [] int32 row the next finished episode overwrites.
    episodes_recorded: [] int32 finished episodes written so far.
    window:           [] int32 active K (the newest K rows count).
    episode_q:        [N, L] float32 rows of the running episodes (NaN beyond their step).
    episode_gradient: [N, L] float32 same for G.
    pending_stop:     [N] bool, decided at the last step: the `stop` mask of the next env step.
    rule_streak:      [N] int32 consecutive steps of the running episodes at which the rule held.
    recent_stopped:   [m] bool, the last m episodes were stopped by LEAST.
    recent_early:     [m] bool, ... stopped before step e.
    recent_position:  [] int32, recent_count: [] int32 ring bookkeeping of the last m episodes.
    entropy_mean:     [] float32 running mean of the window entropies checked so far.
    entropy_checks:   [] int32 checks done.
    """

    q_history: jax.Array
    gradient_history: jax.Array
    history_position: jax.Array
    episodes_recorded: jax.Array
    window: jax.Array
    episode_q: jax.Array
    episode_gradient: jax.Array
    pending_stop: jax.Array
    rule_streak: jax.Array
    recent_stopped: jax.Array
    recent_early: jax.Array
    recent_position: jax.Array
    recent_count: jax.Array
    entropy_mean: jax.Array
    entropy_checks: jax.Array


def init_least(config: LeastConfig, num_envs: int, max_episode_steps: int) -> LeastState:
    """Empty statistics for `num_envs` envs with episodes of at most `max_episode_steps` steps."""
    history = jnp.full((config.window_max, max_episode_steps), jnp.nan, jnp.float32)
    rows = jnp.full((num_envs, max_episode_steps), jnp.nan, jnp.float32)
    recent = jnp.zeros((config.noise_episodes,), jnp.bool_)
    zero = jnp.zeros((), jnp.int32)
    return LeastState(
        q_history=history, gradient_history=history, history_position=zero, episodes_recorded=zero,
        window=jnp.asarray(config.window_init, jnp.int32), episode_q=rows, episode_gradient=rows,
        pending_stop=jnp.zeros((num_envs,), jnp.bool_), rule_streak=jnp.zeros((num_envs,), jnp.int32),
        recent_stopped=recent, recent_early=recent,
        recent_position=zero, recent_count=zero, entropy_mean=jnp.zeros((), jnp.float32), entropy_checks=zero,
    )


def least_state_bytes(config: LeastConfig, num_envs: int, max_episode_steps: int) -> int:
    """Memory of one seed's LeastState (for the replay memory check)."""
    return 4 * 2 * (config.window_max + num_envs) * max_episode_steps


def window_rows(history_position: jax.Array, episodes_recorded: jax.Array, window: jax.Array,
                num_rows: int) -> jax.Array:
    """[num_rows] bool: the rows holding the newest min(window, episodes_recorded) episodes."""
    age = (history_position - 1 - jnp.arange(num_rows)) % num_rows
    return age < jnp.minimum(window, episodes_recorded)


def column_values(history: jax.Array, rows: jax.Array, step_index: jax.Array) -> jax.Array:
    """[K_max, N] history[:, step_index[n]] for each env n, NaN outside the selected rows.

    history: [K_max, L]; rows: [K_max] bool; step_index: [N] int.
    """
    chex.assert_rank([history, rows, step_index], [2, 1, 1])
    return jnp.where(rows[:, None], history[:, step_index], jnp.nan)


def column_statistic(columns: jax.Array, statistic: str) -> tuple[jax.Array, jax.Array]:
    """Median (or mean) of each env's column from column_values: [K_max, N] -> (value [N], NaN
    where no episode reached that step; count [N] int32 of episodes that did)."""
    count = jnp.sum(~jnp.isnan(columns), axis=0).astype(jnp.int32)
    reduce = jnp.nanmedian if statistic == "median" else jnp.nanmean
    return reduce(columns, axis=0), count


def column_spread(columns: jax.Array, center: jax.Array, statistic: str) -> jax.Array:
    """[N] spread of the same columns [K_max, N] around `center` [N]: the median absolute deviation
    for statistic="median", the standard deviation for "mean" (NaN where no episode reached the step)."""
    deviation = jnp.abs(columns - center[None, :])
    if statistic == "median":
        return jnp.nanmedian(deviation, axis=0)
    return jnp.sqrt(jnp.nanmean(deviation**2, axis=0))


def rule_threshold(q_threshold: jax.Array, omega: jax.Array, margin: jax.Array | float = 0.0) -> jax.Array:
    """The Q below which the two-branch rule stops, elementwise: omega * eps - margin for eps >= 0,
    eps / omega - margin for eps < 0 (margin 0: the paper's rule)."""
    return jnp.where(q_threshold >= 0, omega * q_threshold, q_threshold / omega) - margin


def stop_rule(q: jax.Array, q_threshold: jax.Array, omega: jax.Array, margin: jax.Array | float = 0.0) -> jax.Array:
    """The two-branch rule over [N]: stop when Q < rule_threshold(eps, omega, margin)."""
    chex.assert_equal_shape([q, q_threshold, omega])
    return q < rule_threshold(q_threshold, omega, margin)


@struct.dataclass
class StopDecision:
    """stop [N] bool; q_threshold (eps), omega, margin (spread_margin x spread) [N] float32;
    active [N] bool (the rule applied)."""

    stop: jax.Array
    q_threshold: jax.Array
    omega: jax.Array
    margin: jax.Array
    active: jax.Array


def decide_stop(state: LeastState, config: LeastConfig, step_index: jax.Array, q: jax.Array,
                gradient: jax.Array, env_steps: jax.Array) -> StopDecision:
    """Whether each env's episode should stop, given Q_i [N] and G_i [N] at step index i [N].

    Inactive (never stops) before `start_steps` env steps and at step indices that fewer than
    `min_episodes` of the window's episodes reached.
    """
    chex.assert_equal_shape([step_index, q, gradient])
    rows = window_rows(state.history_position, state.episodes_recorded, state.window, state.q_history.shape[0])
    q_columns = column_values(state.q_history, rows, step_index)  # [K_max, N], gathered once
    q_threshold, count = column_statistic(q_columns, config.statistic)
    gradient_reference, _ = column_statistic(column_values(state.gradient_history, rows, step_index),
                                             config.statistic)
    omega = jnp.minimum(config.omega_coefficient * gradient_reference / (gradient + config.epsilon), config.omega_max)
    active = (
        (env_steps >= config.start_steps)
        & (count >= config.min_episodes)
        & jnp.isfinite(q_threshold)
        & jnp.isfinite(omega)
        & (omega > 0)
    )
    margin = jnp.zeros_like(q_threshold)
    if config.spread_margin > 0:  # static: the paper's rule skips the second pass over the columns
        spread = column_spread(q_columns, q_threshold, config.statistic)
        margin = config.spread_margin * spread
    stop = active & stop_rule(q, q_threshold, omega, margin)
    return StopDecision(stop=stop, q_threshold=q_threshold, omega=omega, margin=margin, active=active)


def record_step(state: LeastState, config: LeastConfig, step_index: jax.Array, q: jax.Array,
                gradient: jax.Array, done: jax.Array, stopped: jax.Array,
                episode_length: jax.Array) -> LeastState:
    """Writes Q_i, G_i [N] at step index i [N] into the running episodes' rows; episodes that
    ended at this step (done [N]) move to the ring buffers and the recent-episode ring.

    stopped [N]: the episode was ended by LEAST; episode_length [N]: its length when done.
    """
    chex.assert_equal_shape([step_index, q, gradient, done, stopped, episode_length])
    num_envs, max_steps = state.episode_q.shape
    envs = jnp.arange(num_envs)
    episode_q = state.episode_q.at[envs, step_index].set(q)
    episode_gradient = state.episode_gradient.at[envs, step_index].set(gradient)

    num_rows = state.q_history.shape[0]
    order = jnp.cumsum(done) - 1
    history_slot = jnp.where(done, (state.history_position + order) % num_rows, num_rows)
    q_history = state.q_history.at[history_slot].set(episode_q, mode="drop")
    gradient_history = state.gradient_history.at[history_slot].set(episode_gradient, mode="drop")
    num_done = done.sum().astype(jnp.int32)

    recent_size = state.recent_stopped.shape[0]
    recent_slot = jnp.where(done, (state.recent_position + order) % recent_size, recent_size)
    early = stopped & (episode_length < config.noise_early_fraction * max_steps)

    return state.replace(
        q_history=q_history,
        gradient_history=gradient_history,
        history_position=(state.history_position + num_done) % num_rows,
        episodes_recorded=state.episodes_recorded + num_done,
        episode_q=jnp.where(done[:, None], jnp.nan, episode_q),
        episode_gradient=jnp.where(done[:, None], jnp.nan, episode_gradient),
        recent_stopped=state.recent_stopped.at[recent_slot].set(stopped, mode="drop"),
        recent_early=state.recent_early.at[recent_slot].set(early, mode="drop"),
        recent_position=(state.recent_position + num_done) % recent_size,
        recent_count=jnp.minimum(state.recent_count + num_done, recent_size),
    )


def histogram_entropy(values: jax.Array, valid: jax.Array, num_bins: int) -> jax.Array:
    """Shannon entropy (nats) of a `num_bins` histogram spanning [min, max] of the valid values.

    values, valid: same shape; 0 when fewer than two distinct valid values exist.
    """
    chex.assert_equal_shape([values, valid])
    values, valid = values.reshape(-1), valid.reshape(-1)
    low = jnp.min(jnp.where(valid, values, jnp.inf))
    high = jnp.max(jnp.where(valid, values, -jnp.inf))
    span = jnp.where(high > low, high - low, 1.0)
    bins = jnp.clip(jnp.floor((values - low) / span * num_bins), 0, num_bins - 1).astype(jnp.int32)
    counts = jax.ops.segment_sum(valid.astype(jnp.float32), jnp.where(valid, bins, 0), num_segments=num_bins)
    probabilities = counts / jnp.maximum(counts.sum(), 1.0)
    entropy = -jnp.sum(jnp.where(probabilities > 0, probabilities * jnp.log(jnp.maximum(probabilities, 1e-30)), 0.0))
    return jnp.where(high > low, entropy, 0.0)


def window_entropy(state: LeastState, config: LeastConfig) -> jax.Array:
    """Entropy of B_Q's active window over `entropy_columns` evenly spaced step indices."""
    num_rows, max_steps = state.q_history.shape
    columns = jnp.linspace(0, max_steps - 1, min(config.entropy_columns, max_steps)).round().astype(jnp.int32)
    values = state.q_history[:, columns]
    rows = window_rows(state.history_position, state.episodes_recorded, state.window, num_rows)
    valid = rows[:, None] & ~jnp.isnan(values)
    return histogram_entropy(values, valid, config.entropy_bins)


def adapt_window(state: LeastState, config: LeastConfig, entropy: jax.Array) -> LeastState:
    """One entropy check: K += window_change (clipped to [window_min, window_max]) when
    `entropy` > (1 + entropy_tolerance) * the running mean of earlier checks; the mean then
    takes `entropy` in. The first check only starts the mean."""
    jump = (state.entropy_checks > 0) & (entropy > (1.0 + config.entropy_tolerance) * state.entropy_mean)
    window = jnp.where(jump, jnp.clip(state.window + config.window_change, config.window_min, config.window_max),
                       state.window)
    checks = state.entropy_checks + 1
    entropy_mean = state.entropy_mean + (entropy - state.entropy_mean) / checks
    return state.replace(window=window.astype(jnp.int32), entropy_mean=entropy_mean, entropy_checks=checks)


def maybe_adapt_window(state: LeastState, config: LeastConfig, env_steps_before: jax.Array,
                       env_steps_after: jax.Array) -> LeastState:
    """Runs an entropy check when the env step count crosses a multiple of `window_every`
    (only once episodes were recorded)."""
    due = (env_steps_after // config.window_every > env_steps_before // config.window_every) & (
        state.episodes_recorded > 0
    )
    return jax.lax.cond(due, lambda s: adapt_window(s, config, window_entropy(s, config)), lambda s: s, state)


def exploration_noise(state: LeastState, config: LeastConfig) -> jax.Array:
    """[] extra action-noise std: noise_cap * sigmoid(sharpness * (f - midpoint)), f the fraction
    of the last `noise_episodes` episodes stopped early (0 before any episode ended)."""
    early_fraction = state.recent_early.sum() / jnp.maximum(state.recent_count, 1)
    boost = config.noise_cap * jax.nn.sigmoid(config.noise_sharpness * (early_fraction - config.noise_midpoint))
    return jnp.where(state.recent_count > 0, boost, 0.0)


def recent_stop_rate(state: LeastState) -> jax.Array:
    """[] fraction of the last `noise_episodes` episodes that LEAST stopped."""
    return state.recent_stopped.sum() / jnp.maximum(state.recent_count, 1)


def least_step_with_decision(
    state: LeastState, config: LeastConfig, *, step_index: jax.Array, q: jax.Array, gradient: jax.Array,
    terminated: jax.Array, truncated: jax.Array, episode_length: jax.Array, env_steps_before: jax.Array,
    env_steps_after: jax.Array, recording: jax.Array | bool = True,
) -> tuple[LeastState, dict[str, jax.Array], StopDecision]:
    """Everything LEAST does after one env step of N envs; returns the new state (its
    `pending_stop` is the next step's stop mask), metrics, and the rule's StopDecision at this
    step (before `patience`; for per-step traces).

    step_index [N] int: the index i of the step just taken (its env step count before it);
    q [N]: Q(s_i, a_i); gradient [N]: G_i; terminated, truncated [N] bool: how the step ended;
    episode_length [N] int: length of the episode that ended (read where it ended);
    recording [] bool: Q and G come from a trained critic. While False (before the learner's
    first gradient step) they are left out of B_Q and B_G and nothing is stopped: an untrained
    critic's Q is no value estimate, and its G (no TD loss yet) would enter the medians as zeros.

    Metrics: least_stopped_count, least_stopped_length_sum, least_steps_saved_sum (the stopped
    episodes' remaining steps to the time limit) are sums; least_stop_rate (of the last m
    episodes), least_q_threshold, least_omega and least_margin (means over envs where the rule is active),
    least_active_fraction, least_window and least_noise_scale are values.
    """
    max_steps = state.episode_q.shape[1]
    q = jnp.where(recording, q, jnp.nan)  # NaN: "no value", skipped by the statistics
    gradient = jnp.where(recording, gradient, jnp.nan)
    done = terminated | truncated
    stopped = state.pending_stop & truncated & (episode_length < max_steps)
    state = record_step(state, config, step_index, q, gradient, done, stopped, episode_length)
    decision = decide_stop(state, config, step_index, q, gradient, env_steps_after)
    rule_streak = jnp.where(decision.stop & ~done, state.rule_streak + 1, 0)
    state = state.replace(pending_stop=rule_streak >= config.patience, rule_streak=rule_streak)
    state = maybe_adapt_window(state, config, env_steps_before, env_steps_after)

    active = decision.active.astype(jnp.float32)
    num_active = jnp.maximum(active.sum(), 1.0)
    metrics = {
        "least_stopped_count": stopped.sum().astype(jnp.float32),
        "least_stopped_length_sum": jnp.where(stopped, episode_length, 0).sum().astype(jnp.float32),
        "least_steps_saved_sum": jnp.where(stopped, max_steps - episode_length, 0).sum().astype(jnp.float32),
        "least_stop_rate": recent_stop_rate(state),
        "least_q_threshold": jnp.sum(jnp.where(decision.active, decision.q_threshold, 0.0)) / num_active,
        "least_omega": jnp.sum(jnp.where(decision.active, decision.omega, 0.0)) / num_active,
        "least_margin": jnp.sum(jnp.where(decision.active, decision.margin, 0.0)) / num_active,
        "least_active_fraction": active.mean(),
        "least_window": state.window.astype(jnp.float32),
        "least_noise_scale": exploration_noise(state, config),
    }
    return state, metrics, decision


@dataclasses.dataclass(frozen=True)
class Least:
    """LEAST as a `StopRule` for an env with time limit max_episode_steps: `observe` is
    `least_step_with_decision`; its trace is the StopDecision's per-env view."""

    config: LeastConfig
    max_episode_steps: int
    reads = ("q", "gradient", "recording")
    explores = True

    def init(self, num_envs: int, key: jax.Array) -> LeastState:
        del key
        return init_least(self.config, num_envs, self.max_episode_steps)

    def state_bytes(self, num_envs: int) -> int:
        return least_state_bytes(self.config, num_envs, self.max_episode_steps)

    def observe(self, state: LeastState, step: Any) -> tuple[LeastState, dict[str, jax.Array], dict[str, jax.Array]]:
        state, metrics, decision = least_step_with_decision(state, self.config, **step)
        trace = {"q": step["q"], "q_threshold": decision.q_threshold, "omega": decision.omega,
                 "margin": decision.margin, "active": decision.active, "rule_stop": decision.stop,
                 "stop": state.pending_stop}
        return state, metrics, trace

    def stop_mask(self, state: LeastState) -> jax.Array:
        return state.pending_stop

    def action_noise(self, state: LeastState) -> jax.Array:
        return exploration_noise(state, self.config)
