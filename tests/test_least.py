"""LEAST on hand-made buffers: both sign branches, median vs mean, warm-up, windows, entropy,
the exploration boost, and the bookkeeping of finished and stopped episodes."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.early_stop import (
    LeastConfig,
    adapt_window,
    decide_stop,
    exploration_noise,
    histogram_entropy,
    init_least,
    least_step_with_decision,
    maybe_adapt_window,
    record_step,
    stop_rule,
    window_rows,
)

NAN = np.nan


def least_step(state, config, **step):
    """least_step_with_decision without the decision: (new state, metrics)."""
    state, metrics, _ = least_step_with_decision(state, config, **step)
    return state, metrics

CONFIG = LeastConfig(start_steps=100, min_episodes=2, window_init=4, window_min=1, window_max=4,
                     omega_coefficient=1.0, omega_max=float("inf"), noise_episodes=4)


def _hand_state(config=CONFIG, window=4):
    """K_max = 4 finished episodes of at most L = 3 steps; row 3 is the newest (next write: row 0).

    step 0: Q = 1, 3, 5, 100 (median 4, mean 27.25); step 1: Q = -2, -4, -6, -8 (median/mean -5);
    step 2: reached by rows 2 and 3 only. Every gradient statistic is 1.
    """
    state = init_least(config, num_envs=2, max_episode_steps=3)
    q_history = jnp.array([[1, -2, NAN], [3, -4, NAN], [5, -6, 7], [100, -8, 9]], jnp.float32)
    return state.replace(
        q_history=q_history,
        gradient_history=jnp.where(jnp.isnan(q_history), NAN, 1.0),
        history_position=jnp.int32(0),
        episodes_recorded=jnp.int32(4),
        window=jnp.int32(window),
    )


def _decide(state, step_index, q, gradient, config=CONFIG, env_steps=1000):
    return decide_stop(state, config, jnp.array(step_index), jnp.array(q, jnp.float32),
                       jnp.array(gradient, jnp.float32), jnp.int32(env_steps))


def test_stop_rule_sign_branches():
    q_threshold = jnp.array([10.0, 10.0, -10.0, -10.0])
    omega = jnp.full(4, 0.5)
    # eps >= 0: stop when Q < 0.5 * 10 = 5; eps < 0: stop when Q < -10 / 0.5 = -20.
    stop = stop_rule(jnp.array([4.0, 6.0, -21.0, -19.0]), q_threshold, omega)
    np.testing.assert_array_equal(stop, [True, False, True, False])


def test_positive_branch_on_hand_buffer_with_omega_from_gradients():
    state = _hand_state()
    # eps_0 = median(1, 3, 5, 100) = 4; G = 0.5 so omega = median(B_G) / G = 2: stop when Q < 8.
    decision = _decide(state, [0, 0], [7.9, 8.1], [0.5, 0.5])
    np.testing.assert_allclose(decision.q_threshold, [4.0, 4.0])
    np.testing.assert_allclose(decision.omega, [2.0, 2.0])
    np.testing.assert_array_equal(decision.stop, [True, False])
    # G = 2 halves omega: stop when Q < 2.
    np.testing.assert_array_equal(_decide(state, [0, 0], [1.9, 2.1], [2.0, 2.0]).stop, [True, False])


def test_negative_branch_on_hand_buffer():
    state = _hand_state()
    # eps_1 = median(-2, -4, -6, -8) = -5; omega = 2: stop when Q < -5 / 2 = -2.5.
    decision = _decide(state, [1, 1], [-2.6, -2.4], [0.5, 0.5])
    np.testing.assert_allclose(decision.q_threshold, [-5.0, -5.0])
    np.testing.assert_array_equal(decision.stop, [True, False])


def test_spread_margin_lowers_both_branches_by_hand_computed_spreads():
    state = _hand_state()
    margin_one = dataclasses.replace(CONFIG, spread_margin=1.0)
    # Step 0: eps = 4, |Q - 4| = 3, 1, 1, 96 so MAD = 2; omega = 2: stop when Q < 2 * 4 - 2 = 6.
    decision = _decide(state, [0, 0], [5.9, 6.1], [0.5, 0.5], config=margin_one)
    np.testing.assert_allclose(decision.margin, [2.0, 2.0])
    np.testing.assert_array_equal(decision.stop, [True, False])
    # Step 1: eps = -5, |Q + 5| = 3, 1, 1, 3 so MAD = 2; half a MAD: stop when Q < -5 / 2 - 1 = -3.5.
    half = dataclasses.replace(CONFIG, spread_margin=0.5)
    np.testing.assert_array_equal(_decide(state, [1, 1], [-3.6, -3.4], [0.5, 0.5], config=half).stop, [True, False])
    # The mean's spread is the standard deviation: mean 27.25, std sqrt(7064.75 / 4) = 42.0264.
    mean_one = dataclasses.replace(margin_one, statistic="mean")
    decision = _decide(state, [0, 0], [12.4, 12.6], [0.5, 0.5], config=mean_one)
    np.testing.assert_allclose(decision.margin, [42.0264, 42.0264], rtol=1e-5)
    np.testing.assert_array_equal(decision.stop, [True, False])  # Q < 2 * 27.25 - 42.0264 = 12.47
    # Margin 0 (the default) is the paper's rule: the same Q stops at 7.9 < 8 without it.
    assert bool(_decide(state, [0], [7.9], [0.5]).stop[0])
    assert not bool(_decide(state, [0], [7.9], [0.5], config=margin_one).stop[0])
    with pytest.raises(ValueError, match=r"least.spread_margin=-1.0"):
        LeastConfig(spread_margin=-1.0).validate()


def test_median_and_mean_give_different_thresholds():
    state = _hand_state()
    mean_config = dataclasses.replace(CONFIG, statistic="mean")
    # step 0, omega = 1: median threshold 4 keeps Q = 20 running, the mean 27.25 stops it.
    assert not bool(_decide(state, [0, 0], [20.0, 20.0], [1.0, 1.0]).stop[0])
    decision = _decide(state, [0, 0], [20.0, 20.0], [1.0, 1.0], config=mean_config)
    np.testing.assert_allclose(decision.q_threshold, [27.25, 27.25])
    assert bool(decision.stop[0])


def test_no_stop_during_warm_up_or_with_too_few_episodes():
    state = _hand_state()
    assert not _decide(state, [0, 0], [-50.0, -50.0], [1.0, 1.0], env_steps=99).stop.any()
    assert _decide(state, [0, 0], [-50.0, -50.0], [1.0, 1.0], env_steps=100).stop.all()
    # step 2 was reached by 2 episodes: enough for min_episodes=2, not for 3.
    assert _decide(state, [2, 2], [-50.0, -50.0], [1.0, 1.0]).stop.all()
    strict = dataclasses.replace(CONFIG, min_episodes=3)
    decision = _decide(state, [2, 2], [-50.0, -50.0], [1.0, 1.0], config=strict)
    assert not decision.stop.any() and not decision.active.any()


def test_window_selects_the_newest_episodes():
    np.testing.assert_array_equal(window_rows(jnp.int32(0), jnp.int32(4), jnp.int32(2), 4),
                                  [False, False, True, True])
    np.testing.assert_array_equal(window_rows(jnp.int32(1), jnp.int32(2), jnp.int32(4), 4),
                                  [True, False, False, True])  # only 2 episodes so far, rows 3 and 0
    # window 2 = rows 2, 3: eps_0 = median(5, 100) = 52.5, so Q = 20 now stops.
    decision = _decide(_hand_state(window=2), [0, 0], [20.0, 60.0], [1.0, 1.0])
    np.testing.assert_allclose(decision.q_threshold, [52.5, 52.5])
    np.testing.assert_array_equal(decision.stop, [True, False])


def test_adaptive_window_changes_k_when_entropy_jumps():
    config = dataclasses.replace(CONFIG, window_change=-1, entropy_tolerance=0.1, window_every=10)
    state = _hand_state(config)
    first = adapt_window(state, config, jnp.float32(1.0))  # first check: only starts the mean
    assert int(first.window) == 4 and float(first.entropy_mean) == 1.0
    calm = adapt_window(first, config, jnp.float32(1.09))  # below (1 + 0.1) * 1.0
    assert int(calm.window) == 4
    jump = adapt_window(first, config, jnp.float32(1.2))
    assert int(jump.window) == 3 and float(jump.entropy_mean) == pytest.approx(1.1)
    floor = adapt_window(first.replace(window=jnp.int32(1)), config, jnp.float32(5.0))
    assert int(floor.window) == 1  # clipped at window_min
    grow = dataclasses.replace(config, window_change=3)
    assert int(adapt_window(first, grow, jnp.float32(5.0)).window) == 4  # clipped at window_max
    # Checks happen only when the env step count crosses a multiple of window_every.
    assert int(maybe_adapt_window(state, config, jnp.int32(11), jnp.int32(19)).entropy_checks) == 0
    assert int(maybe_adapt_window(state, config, jnp.int32(19), jnp.int32(21)).entropy_checks) == 1


def test_histogram_entropy():
    valid = jnp.ones(4, bool)
    assert float(histogram_entropy(jnp.array([0.0, 0.0, 1.0, 1.0]), valid, 2)) == pytest.approx(np.log(2))
    assert float(histogram_entropy(jnp.array([0.0, 1.0, 2.0, 3.0]), valid, 4)) == pytest.approx(np.log(4))
    assert float(histogram_entropy(jnp.array([5.0, 5.0, 5.0, 5.0]), valid, 4)) == 0.0
    masked = histogram_entropy(jnp.array([0.0, 1.0, 2.0, 99.0]), jnp.array([True, True, False, False]), 2)
    assert float(masked) == pytest.approx(np.log(2))


def test_record_step_moves_finished_episodes_into_the_ring():
    config = dataclasses.replace(CONFIG, window_max=2, window_init=2, noise_early_fraction=0.5)
    state = init_least(config, num_envs=3, max_episode_steps=4)
    false3 = jnp.zeros(3, bool)
    state = record_step(state, config, jnp.array([0, 0, 0]), jnp.array([1.0, 2.0, 3.0]), jnp.array([0.1, 0.2, 0.3]),
                        false3, false3, jnp.zeros(3, jnp.int32))
    # envs 0 and 2 end at step 1 (env 0 stopped by LEAST after 2 of 4 steps: not "early" at e = 2).
    state = record_step(state, config, jnp.array([1, 1, 1]), jnp.array([4.0, 5.0, 6.0]), jnp.array([0.4, 0.5, 0.6]),
                        jnp.array([True, False, True]), jnp.array([True, False, False]), jnp.array([2, 0, 2]))
    np.testing.assert_array_equal(state.q_history, [[1, 4, NAN, NAN], [3, 6, NAN, NAN]])
    np.testing.assert_allclose(state.gradient_history[1], [0.3, 0.6, NAN, NAN])
    assert int(state.history_position) == 0 and int(state.episodes_recorded) == 2
    np.testing.assert_array_equal(state.episode_q, [[NAN] * 4, [2, 5, NAN, NAN], [NAN] * 4])
    np.testing.assert_array_equal(state.recent_stopped[:2], [True, False])
    assert int(state.recent_count) == 2 and not state.recent_early.any()
    # env 1 ends at step 2, stopped early (length 1 < e = 2): it overwrites the oldest row.
    state = record_step(state, config, jnp.array([0, 2, 0]), jnp.array([7.0, 8.0, 9.0]), jnp.zeros(3),
                        jnp.array([False, True, False]), jnp.array([False, True, False]), jnp.array([0, 1, 0]))
    np.testing.assert_array_equal(state.q_history[0], [2, 5, 8, NAN])
    assert int(state.history_position) == 1
    np.testing.assert_array_equal(state.recent_early[:3], [False, False, True])


def test_exploration_boost_follows_a_capped_sigmoid():
    config = dataclasses.replace(CONFIG, noise_cap=0.3, noise_sharpness=10.0, noise_midpoint=0.5)
    state = init_least(config, num_envs=1, max_episode_steps=3)
    assert float(exploration_noise(state, config)) == 0.0
    half = state.replace(recent_early=jnp.array([True, True, False, False]), recent_count=jnp.int32(4))
    assert float(exploration_noise(half, config)) == pytest.approx(0.15)
    every = state.replace(recent_early=jnp.ones(4, bool), recent_count=jnp.int32(4))
    assert float(exploration_noise(every, config)) == pytest.approx(0.3 / (1 + np.exp(-5.0)))


def test_least_step_stops_on_the_next_step_and_counts_saved_steps():
    state = _hand_state()
    false2 = jnp.zeros(2, bool)
    kwargs = dict(gradient=jnp.ones(2), env_steps_before=jnp.int32(1000), env_steps_after=jnp.int32(1002))
    # step 0: env 0 is far below the threshold 4, env 1 above it.
    state, metrics = least_step(state, CONFIG, step_index=jnp.array([0, 0]), q=jnp.array([-50.0, 50.0]),
                                terminated=false2, truncated=false2, episode_length=jnp.zeros(2, jnp.int32), **kwargs)
    np.testing.assert_array_equal(state.pending_stop, [True, False])
    assert float(metrics["least_stopped_count"]) == 0.0
    assert float(metrics["least_q_threshold"]) == 4.0 and float(metrics["least_active_fraction"]) == 1.0
    # step 1: the env applied the stop as a truncation after 2 of L = 3 steps.
    state, metrics = least_step(state, CONFIG, step_index=jnp.array([1, 1]), q=jnp.array([-1.0, -1.0]),
                                terminated=false2, truncated=jnp.array([True, False]),
                                episode_length=jnp.array([2, 0]), **kwargs)
    assert float(metrics["least_stopped_count"]) == 1.0
    assert float(metrics["least_stopped_length_sum"]) == 2.0
    assert float(metrics["least_steps_saved_sum"]) == 1.0
    assert float(metrics["least_stop_rate"]) == 1.0
    assert not bool(state.pending_stop[0])  # a new episode starts unstopped
    assert int(state.episodes_recorded) == 5


def test_bad_least_config_names_the_field():
    with pytest.raises(ValueError, match=r"sac.least.statistic='mode'"):
        LeastConfig(statistic="mode").validate("sac.least")
    with pytest.raises(ValueError, match=r"least.window_init=600"):
        LeastConfig(window_init=600).validate()


def test_least_state_round_trips_through_a_checkpoint(tmp_path):
    from jaxrl_suite.runner import Checkpointer

    state = _hand_state()
    checkpointer = Checkpointer(tmp_path, keep=1)
    checkpointer.save(1, state, {"updates": 1, "wall_time": 0.0})
    checkpointer.close()
    restored, _ = Checkpointer(tmp_path).restore(init_least(CONFIG, num_envs=2, max_episode_steps=3))
    chex.assert_trees_all_equal(restored, state)  # NaN slots included


def test_sac_with_least_stops_episodes_as_truncations():
    """An eager rule (every Q is below eps / omega once omega is huge) on Pendulum: after the
    first 4 full episodes, episodes are cut early, stored truncated and never terminal."""
    from jaxrl_suite.agents.sac import default_config, make_sac
    from jaxrl_suite.envs import make
    from jaxrl_suite.runner import scan_updates

    least = LeastConfig(start_steps=0, min_episodes=1, window_init=4, window_min=1, window_max=8,
                        omega_coefficient=1000.0, omega_max=float("inf"), window_every=400)
    config = default_config("gymnax/Pendulum-v1", hidden_sizes=(16, 16), batch_size=32, buffer_size=1200,
                            learning_starts=64, num_envs=4, early_stop="least", least=least)
    learner = make_sac(config, make("gymnax/Pendulum-v1"))
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))
    state, first = jax.jit(lambda s: scan_updates(learner, s, 20))(state)
    # The first gradient step comes with update 16 (64 env steps): steps 0..15 are not recorded.
    assert np.isnan(state.least.episode_q[:, :16]).all() and np.isfinite(state.least.episode_q[:, 16:20]).all()
    state, metrics = jax.jit(lambda s: scan_updates(learner, s, 280))(state)
    metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, metrics)
    stopped = float(metrics["least_stopped_count"].sum())
    assert stopped > 10
    assert not bool(state.replay.data.terminated.any())
    # 4 time-limit ends at update 200, the rest are LEAST's truncations.
    assert int(state.replay.data.truncated.sum()) == 4 + stopped
    stopped_length = float(metrics["least_stopped_length_sum"].sum())
    assert float(metrics["least_steps_saved_sum"].sum()) == 200 * stopped - stopped_length
    assert float(metrics["completed_count"].sum()) == 4 + stopped
    assert float(metrics["least_window"][-1]) in range(1, 9)
    assert float(metrics["least_noise_scale"][-1]) > 0.1  # nearly all recent episodes stopped early

    # traced_update is update plus LEAST's per-env view of the step, which agrees with the new state.
    plain_state, plain_metrics = jax.jit(learner.update)(state)
    traced_state, traced_metrics, trace = jax.jit(learner.traced_update)(state)
    chex.assert_trees_all_equal((traced_state, traced_metrics), (plain_state, plain_metrics))
    chex.assert_shape(list(trace.values()), (4,))
    np.testing.assert_array_equal(trace["stop"], traced_state.least.pending_stop)
    np.testing.assert_array_equal(trace["rule_stop"] & ~trace["done"], trace["stop"])  # patience 1
    assert not (trace["rule_stop"] & ~trace["active"]).any()
    np.testing.assert_array_equal(trace["step_index"], state.env_state.info["step_count"])
    without_least = make_sac(dataclasses.replace(config, early_stop="none"), make("gymnax/Pendulum-v1"))
    assert jax.eval_shape(without_least.traced_update, jax.eval_shape(without_least.init, jax.random.PRNGKey(0)))[2] == {}


def _step_kwargs(step, q, truncated=(False, False), length=(0, 0), **extra):
    return dict(step_index=jnp.array([step, step]), q=jnp.array(q, jnp.float32), gradient=jnp.ones(2),
                terminated=jnp.zeros(2, bool), truncated=jnp.array(truncated), episode_length=jnp.array(length),
                env_steps_before=jnp.int32(1000), env_steps_after=jnp.int32(1002), **extra)


def test_steps_before_the_critic_learned_are_not_recorded_nor_stopped():
    """An untrained critic's Q (and its zero TD loss) must not enter B_Q / B_G."""
    state = _hand_state()
    # Q = -50 is far below eps_0 = 4, but recording=False: no decision, nothing written.
    state, metrics = least_step(state, CONFIG, **_step_kwargs(0, [-50.0, -50.0], recording=jnp.bool_(False)))
    assert not state.pending_stop.any() and float(metrics["least_active_fraction"]) == 0.0
    assert np.isnan(state.episode_q[:, 0]).all() and np.isnan(state.episode_gradient[:, 0]).all()
    # The episode ends at step 1 with recording on: only step 1 reaches the ring.
    state, _ = least_step(state, CONFIG, **_step_kwargs(1, [-3.0, -3.0], truncated=(True, False), length=(2, 0)))
    np.testing.assert_array_equal(state.q_history[0], [NAN, -3.0, NAN])
    np.testing.assert_array_equal(state.gradient_history[0], [NAN, 1.0, NAN])
    # The new row replaced the oldest (Q_0 = 1); column 0 is 3, 5, 100 (a recorded -50 would give 4).
    np.testing.assert_array_equal(state.q_history[:, 0], [NAN, 3.0, 5.0, 100.0])
    assert float(_decide(state, [0, 0], [0.0, 0.0], [1.0, 1.0]).q_threshold[0]) == 5.0


def test_patience_needs_consecutive_steps_below_the_threshold():
    config = dataclasses.replace(CONFIG, patience=3)
    state = _hand_state(config)
    # Step 0 (eps 4): env 0 below, env 1 above; step 1 (eps -5): both below -5.
    state, _ = least_step(state, config, **_step_kwargs(0, [-50.0, 50.0]))
    np.testing.assert_array_equal(state.rule_streak, [1, 0])
    state, _ = least_step(state, config, **_step_kwargs(1, [-50.0, -50.0]))
    np.testing.assert_array_equal(state.rule_streak, [2, 1])
    assert not state.pending_stop.any()
    state, _ = least_step(state, config, **_step_kwargs(2, [-50.0, 50.0]))  # eps_2 = 8: env 1 recovers
    np.testing.assert_array_equal(state.rule_streak, [3, 0])
    np.testing.assert_array_equal(state.pending_stop, [True, False])
    # Ending the episode clears its streak.
    state, _ = least_step(state, config, **_step_kwargs(0, [-50.0, -50.0], truncated=(True, False), length=(3, 0)))
    np.testing.assert_array_equal(state.rule_streak, [0, 1])
    with pytest.raises(ValueError, match=r"least.patience=0"):
        LeastConfig(patience=0).validate()


def test_omega_max_caps_how_far_above_the_median_the_rule_may_reach():
    state = _hand_state()
    capped = dataclasses.replace(CONFIG, omega_max=1.0)
    # G = 0.5 gives omega = 2: uncapped, Q = 7.9 > eps_0 = 4 is stopped (Q < 2 * 4) ...
    assert bool(_decide(state, [0, 0], [7.9, 3.9], [0.5, 0.5]).stop[0])
    # ... capped at 1, only Q below the median stops, in both branches (eps_1 = -5).
    decision = _decide(state, [0, 0], [7.9, 3.9], [0.5, 0.5], config=capped)
    np.testing.assert_allclose(decision.omega, [1.0, 1.0])
    np.testing.assert_array_equal(decision.stop, [False, True])
    np.testing.assert_array_equal(_decide(state, [1, 1], [-4.9, -5.1], [0.5, 0.5], config=capped).stop, [False, True])
    # A larger G than usual (omega < 1: learning less calm) is left alone by the cap.
    np.testing.assert_allclose(_decide(state, [0, 0], [0.0, 0.0], [4.0, 4.0], config=capped).omega, [0.25, 0.25])
