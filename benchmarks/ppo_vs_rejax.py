"""Our PPO vs rejax's PPO on gymnax tasks: same hyperparameters and budget, one process.

Prints compile time, training steps/s and final return of both and the speed ratio. Both sides train
the same network: rejax's default separate 64x64 tanh actor and critic. Both sides' final returns
come from one evaluation function of ours (`shared_greedy_return`): the GREEDY action (argmax of
each side's policy logits) for one episode on each of the same 128 fresh envs of our gymnax env
(same keys), an episode ending at termination or at the env's time limit, whichever comes first.
rejax's own evaluation (sampled actions, `make_act`) is switched off in the timed runs and printed
only for reference by --return-seeds.

Truncation in training (rejax's algorithm, left as it is): rejax 0.1.3 takes gymnax's old
five-tuple step, so FiveTupleStep gives it done = terminated or truncated, and its GAE cuts both
the bootstrap and the advantage recursion at `done`: reaching the time limit (CartPole's 500
steps, Breakout-MinAtar's 1,000) is treated as a termination, with value 0 after it. Ours
bootstraps a truncated step from the critic's value of its final observation.
Run: python benchmarks/ppo_vs_rejax.py [--env CartPole-v1] [--total-steps 500000] [--return-seeds 8] [--parts]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gymnax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import (  # noqa: E402
    WorkBound,
    compiled_flops,
    device_description,
    markdown_table,
    matmul_flops_per_second,
    mean_and_error,
    time_interleaved,
    time_jitted,
    widest_kernel_shape,
)
from jaxrl_suite.agents.episodes import evaluate_policy  # noqa: E402
from jaxrl_suite.agents.ppo import default_config, make_ppo  # noqa: E402
from jaxrl_suite.envs import make  # noqa: E402
from jaxrl_suite.runner import scan_updates  # noqa: E402


class FiveTupleStep:
    """gymnax >= 1.0 returns (obs, state, reward, terminated, truncated, info); rejax 0.1.3
    expects (obs, state, reward, done, info), done = terminated or truncated as gymnax < 1.0 gave
    it (rejax keeps no other flag, so it cannot tell them apart). Everything else is forwarded."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        if name == "_env":  # during copy/deepcopy, before __init__ ran
            raise AttributeError(name)
        return getattr(self._env, name)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


def shared_settings(args) -> dict:
    """Our PPOConfig fields, passed alike to rejax; adam_eps is rejax's implicit optax.adam default."""
    return dict(num_envs=args.num_envs, rollout_length=args.num_steps, num_epochs=args.epochs,
                num_minibatches=args.minibatches, learning_rate=args.lr, adam_eps=1e-8, gamma=0.99, gae_lambda=0.95,
                clip_eps=0.2, entropy_coef=0.01, value_coef=0.5, max_grad_norm=0.5, total_steps=args.total_steps)


# rejax's default PPO agent: separate actor and critic MLPs of two 64-unit layers (tanh, as the
# benchmark passes it) on flat observations, on every env; ours is pinned to the same network
# (our MinAtar default would otherwise add a conv torso).
SAME_NETWORK = dict(hidden_sizes=(64, 64), critic_hidden_sizes=None, activation="tanh", shared_trunk=False,
                    conv_channels=(), conv_input_shape=())


def make_ours(env_name: str, settings: dict):
    """Our PPO with the shared settings. rejax always clips the value prediction's change to
    +-clip_eps, so ours does too (value_clip_eps). One difference is left: max_grad_norm clips the
    global gradient norm here, and each gradient element (optax.clip) in rejax."""
    config = dataclasses.replace(default_config(f"gymnax/{env_name}"), anneal_lr=False, num_eval_envs=128,
                                 value_clip_eps=settings["clip_eps"], **SAME_NETWORK, **settings)
    return make_ppo(config, make(f"gymnax/{env_name}"))


def trained_steps(settings: dict) -> int:
    """Env steps our PPO trains for: whole iterations of num_envs x rollout_length within total_steps."""
    batch = settings["num_envs"] * settings["rollout_length"]
    return settings["total_steps"] // batch * batch


def rejax_trained_steps(algo) -> int:
    """Env steps rejax's train() runs: ceil(total / eval_freq) evaluation periods of
    ceil(eval_freq / iteration) whole iterations each (rejax's OnPolicyMixin.train)."""
    iteration = algo.num_envs * algo.num_steps
    return math.ceil(algo.total_timesteps / algo.eval_freq) * math.ceil(algo.eval_freq / iteration) * iteration


def make_rejax(env_name: str, settings: dict):
    """rejax's PPO with our settings, trained for exactly our number of env steps (rejax rounds
    a budget that is not a whole number of iterations up, ours rounds it down). Its own end-of-
    training evaluation is switched off (`train` returns () for it): see rejax_own_evaluation."""
    from rejax import PPO

    env, env_params = gymnax.make(env_name)
    steps = trained_steps(settings)
    algo = PPO.create(
        env=FiveTupleStep(env), env_params=env_params, num_envs=settings["num_envs"],
        num_steps=settings["rollout_length"], num_epochs=settings["num_epochs"],
        num_minibatches=settings["num_minibatches"], learning_rate=settings["learning_rate"],
        gamma=settings["gamma"], gae_lambda=settings["gae_lambda"], clip_eps=settings["clip_eps"],
        ent_coef=settings["entropy_coef"], vf_coef=settings["value_coef"], max_grad_norm=settings["max_grad_norm"],
        total_timesteps=steps, eval_freq=steps, skip_initial_evaluation=True, agent_kwargs={"activation": "tanh"},
    )
    if rejax_trained_steps(algo) != steps:
        raise RuntimeError(f"rejax would train {rejax_trained_steps(algo)} env steps, ours {steps}")
    return algo.replace(eval_callback=lambda algo, ts, rng: ())


def rejax_own_evaluation(algo, train_state) -> jax.Array:
    """rejax's own evaluation, as its train() would have run it: 128 episodes of `make_act`,
    which SAMPLES from the policy, each ending at done (terminated or truncated) or
    max_steps_in_episode. For reference only; the comparison uses shared_greedy_return."""
    from rejax.evaluate import evaluate

    _, returns = evaluate(algo.make_act(train_state), train_state.rng, algo.env, algo.env_params, 128,
                          algo.env_params.max_steps_in_episode)
    return returns.mean()


def shared_greedy_return(learner, logits, key) -> jax.Array:
    """The one evaluation both sides get: the greedy action (argmax of `logits(obs [B, obs_dim])`,
    [B, num_actions]) for one episode on each of num_eval_envs (128) fresh envs of our `learner`'s
    env (make_ours, same on both sides), from `key`, an episode ending at termination or
    truncation (the env's time limit), whichever comes first: the mean return. For our own policy
    this is our PPO's `evaluate` (its distribution mode is the argmax)."""

    def act(obs):
        return jnp.argmax(logits(obs), axis=-1)

    return evaluate_policy(learner.env, act, key, learner.config.num_eval_envs, learner.eval_max_steps)["eval_return"]


def rejax_logits(algo, actor_params):
    """obs [B, obs_dim] -> rejax's DiscretePolicy logits [B, num_actions] (its MLP flattens the
    observation as our gymnax adapter does)."""
    return lambda obs: algo.actor.apply(actor_params, obs, method=lambda actor, o: actor.action_logits(actor.features(o)))


def whole_run_ours(env_name: str, settings: dict):
    """(run(key) -> final shared_greedy_return, env steps it trains for) of our PPO."""
    learner = make_ours(env_name, settings)
    num_updates = trained_steps(settings) // learner.config.batch_size

    def whole_run(key):
        state, _ = scan_updates(learner, learner.init(key), num_updates)
        return shared_greedy_return(learner, functools.partial(learner.policy_outputs, state.params, state.obs_stats),
                                    jax.random.fold_in(key, 1))

    return whole_run, trained_steps(settings)


def whole_run_rejax(env_name: str, settings: dict, with_own_evaluation: bool = False):
    """run(key) -> final shared_greedy_return of rejax's PPO (same evaluation key as ours), and
    with `with_own_evaluation` also rejax_own_evaluation of the same trained policy."""
    algo, evaluator = make_rejax(env_name, settings), make_ours(env_name, settings)

    def whole_run(key):
        train_state, _ = algo.train(key)
        shared = shared_greedy_return(evaluator, rejax_logits(algo, train_state.actor_ts.params),
                                      jax.random.fold_in(key, 1))
        return (shared, rejax_own_evaluation(algo, train_state)) if with_own_evaluation else shared

    return whole_run


def rollout_flops(env_name: str, settings: dict, key) -> float:
    """XLA's count of one whole rollout: T times a one-step learner's rollout, so that work done
    after the rollout's loop (the critic over all observations) is counted per step, less the
    critic's pass over the last state's observations, which a rollout runs once (on CPU)."""
    one_step = make_ours(env_name, {**settings, "rollout_length": 1, "num_minibatches": 1})
    state = one_step.init(key)
    step = compiled_flops(lambda s, k: one_step.rollout(s.params, s.obs_stats, s.env_state, k), state, key)
    once = 0.0
    if one_step.critic_on_truncations_only:
        once = compiled_flops(lambda s: one_step._value(s.params, s.obs_stats, s.env_state.obs), state)
    return settings["rollout_length"] * (step - once) + once


def iteration_flops(learner, state, batch, rollout: float, batch_flops: float) -> float:
    """XLA's count of one PPO iteration's work: the rollout (rollout_flops), the batch's GAE
    (batch_flops, the timed program's own count), plus one minibatch's loss gradient times
    epochs x minibatches (XLA counts a loop's body once: multiplied out by hand; the rollout's
    loop over truncated envs is counted as one pass, an over-count when none is truncated)."""
    config = learner.config
    minibatch = jax.tree.map(lambda x: x[: config.minibatch_size], batch)
    gradient_flops = compiled_flops(
        lambda p, b: jax.grad(lambda q: learner.ppo_loss(q, state.obs_stats, b)[0])(p), state.params, minibatch
    )
    return rollout + batch_flops + config.num_epochs * config.num_minibatches * gradient_flops


def update_parts(env_name: str, settings: dict, seed: int, repeats: int) -> tuple[list[list[str]], list[str]]:
    """Milliseconds per PPO iteration and per piece of it, both sides, from an initial state
    (fastest of `repeats` runs after compiling each piece on its own), and our work's share of
    the device's matmul rate at the widest layer."""
    learner, algo = make_ours(env_name, settings), make_rejax(env_name, settings)
    key = jax.random.PRNGKey(seed)
    state, rejax_state = learner.init(key), algo.init_state(key)

    def timed(fn, *args):
        return time_jitted(fn, *args, repeats=repeats)

    def ms(timing) -> str:
        return f"{timing.run_s * 1e3:.1f}"

    rollout = timed(lambda s, k: learner.rollout(s.params, s.obs_stats, s.env_state, k), state, key)
    _, trajectory, _ = rollout.output
    made_batch = timed(learner.make_batch, trajectory)
    batch, _ = made_batch.output
    epochs = timed(lambda s, b, k: learner.run_epochs(s.params, s.opt_state, s.obs_stats, b, k)[0],
                   state, batch, key)
    update = timed(lambda s: learner.update(s)[0], state)
    rejax_rollout, rejax_update = timed(algo.collect_trajectories, rejax_state), timed(algo.train_iteration, rejax_state)
    rows = [[env_name, "ours", ms(rollout), ms(made_batch), ms(epochs), ms(update)],
            [env_name, "rejax", ms(rejax_rollout), "-", "-", ms(rejax_update)]]
    steps = learner.config.batch_size
    flops_per_step = iteration_flops(learner, state, batch, rollout_flops(env_name, settings, key),
                                     made_batch.flops) / steps
    ours_sps, rejax_sps = steps / update.run_s, steps / rejax_update.run_s
    bound = WorkBound(flops_per_step, flops_per_step * ours_sps,
                      matmul_flops_per_second(learner.config.minibatch_size, *widest_kernel_shape(state.params)))
    return rows, [f"{env_name}: {line}" for line in bound.lines(ours_sps, rejax_sps, goal_ratio=1.2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", action="append", help="gymnax env name(s); default CartPole-v1 and Breakout-MinAtar")
    parser.add_argument("--total-steps", type=int, default=500_000)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--num-steps", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--minibatches", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2.5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed runs of each side after compiling; whole runs alternate between the sides")
    parser.add_argument("--return-seeds", type=int, default=0,
                        help="afterwards, train this many seeds (from --seed on) per side, each side's seeds as "
                             "one vmapped program, and print the final returns' mean +- standard error")
    parser.add_argument("--parts", action="store_true",
                        help="instead of whole runs: ms per iteration and per piece (rollout, GAE, epochs), "
                             "and our work's share of the device's matmul rate")
    args = parser.parse_args()
    envs = args.env or ["CartPole-v1", "Breakout-MinAtar"]
    settings = shared_settings(args)
    if trained_steps(settings) == 0:
        parser.error(f"--total-steps {args.total_steps} is less than one iteration of --num-envs x --num-steps "
                     f"= {args.num_envs * args.num_steps} env steps; give at least that many")
    print(f"device {device_description()}; settings {settings}")
    if args.parts:
        parts = [update_parts(env_name, settings, args.seed, args.repeats) for env_name in envs]
        print(markdown_table(PARTS_HEADER, [row for rows, _ in parts for row in rows]))
        print("\n" + "\n".join(line for _, lines in parts for line in lines))
        return
    rows = []
    for env_name in envs:
        ours_run, steps = whole_run_ours(env_name, settings)
        key = jax.random.PRNGKey(args.seed)
        ours, theirs = time_interleaved([(ours_run, (key,)), (whole_run_rejax(env_name, settings), (key,))],
                                        args.repeats)
        best = [steps / ours.run_s, steps / theirs.run_s]
        median = [steps / ours.median_s, steps / theirs.median_s]
        rows.append([env_name, f"{ours.compile_s:.1f}", f"{theirs.compile_s:.1f}", f"{best[0]:,.0f}",
                     f"{best[1]:,.0f}", f"{best[0] / best[1]:.2f}", f"{median[0] / median[1]:.2f}",
                     f"{float(ours.output):.1f}", f"{float(theirs.output):.1f}"])
        print(markdown_table(HEADER, rows[-1:]), flush=True)
    print("\n" + markdown_table(HEADER, rows))
    if args.return_seeds > 0:
        print("\n" + "\n".join(returns_over_seeds(env_name, settings, args.seed, args.return_seeds) for env_name in envs))


def returns_over_seeds(env_name: str, settings: dict, first_seed: int, num_seeds: int) -> str:
    """Final shared_greedy_return of seeds first_seed.. on both sides (one vmapped program per
    side; not timed), plus rejax's own sampled evaluation of the same policies for reference:
    one seed's return is too noisy to call two returns equal."""
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(first_seed, first_seed + num_seeds))
    ours_run, _ = whole_run_ours(env_name, settings)
    ours = np.asarray(jax.jit(jax.vmap(ours_run))(keys))
    rejax, rejax_own = jax.jit(jax.vmap(whole_run_rejax(env_name, settings, with_own_evaluation=True)))(keys)
    per_seed = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(ours, np.asarray(rejax), strict=True))
    return (f"{env_name}: final return, greedy, shared evaluation (128 episodes), seeds {first_seed}-"
            f"{first_seed + num_seeds - 1}: ours {mean_and_error(list(ours))}, rejax "
            f"{mean_and_error(list(np.asarray(rejax)))}; per seed ours/rejax {per_seed}; rejax's own "
            f"evaluation (sampled actions) of the same policies {mean_and_error(list(np.asarray(rejax_own)))}")


PARTS_HEADER = ["env", "side", "rollout ms", "GAE + batch ms", "epochs ms", "whole iteration ms"]
HEADER = ["env", "ours compile s", "rejax compile s", "ours steps/s (fastest run)", "rejax steps/s (fastest run)",
          "speed ratio (fastest runs)", "speed ratio (median runs)", "ours final return (greedy, shared eval)",
          "rejax final return (greedy, shared eval)"]

if __name__ == "__main__":
    main()
