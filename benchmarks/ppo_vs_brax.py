"""Our PPO vs brax.training's PPO on the same env, hyperparameters and env-step budget, one process.

Prints end-to-end time, compile time, steady training steps/s and final deterministic return of
both, the speed ratio, and our steps/s as a fraction of the raw env step rate at the same batch.
Run: python benchmarks/ppo_vs_brax.py [--env dmc/CartpoleBalance] [--total-steps 1000000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import (  # noqa: E402
    device_description,
    markdown_table,
    mean_and_error,
    raw_env_steps_per_second,
    restore_brax_device_helpers,
)
from jaxrl_suite.agents.ppo import default_config, make_ppo  # noqa: E402
from jaxrl_suite.envs import make  # noqa: E402
from jaxrl_suite.runner import make_chunk_fn  # noqa: E402
from jaxrl_suite.runner.chunks import init_stacked  # noqa: E402

NUM_EVAL_ENVS = 16
BRAX_NUM_EVALS = 3  # brax's ppo.train evaluates at the start and after each of its 2 training epochs
BRAX_EPOCHS = BRAX_NUM_EVALS - 1


def shared_settings(args) -> dict:
    """Our PPOConfig fields; run_brax passes the same values to brax's ppo.train.

    adam_eps is brax's implicit optax.adam default (1e-8). It matters here: the value loss of
    rewards scaled by 10 gives a joint gradient norm in the thousands, the global-norm clip to 1
    shrinks the policy's part below our usual eps of 1e-5, and Adam's steps then shrink with it.
    """
    return dict(num_envs=args.num_envs, rollout_length=args.unroll, num_minibatches=args.minibatches,
                num_epochs=args.epochs, learning_rate=1e-3, adam_eps=1e-8, gamma=0.995, reward_scale=10.0,
                entropy_coef=1e-2, normalize_observations=True, anneal_lr=False, total_steps=args.total_steps,
                num_eval_envs=NUM_EVAL_ENVS, clip_eps=0.3, gae_lambda=0.95, max_grad_norm=1.0)


def brax_trained_steps(settings: dict) -> int:
    """Env steps brax's ppo.train runs: BRAX_EPOCHS epochs of ceil(total / (BRAX_EPOCHS x
    iteration)) iterations each (brax rounds a budget up; our runner would round it down)."""
    iteration = settings["num_envs"] * settings["rollout_length"]
    return BRAX_EPOCHS * math.ceil(settings["total_steps"] / (BRAX_EPOCHS * iteration)) * iteration


def run_ours(env_id: str, settings: dict, seed: int) -> dict:
    """Our PPO for exactly brax's number of env steps, in BRAX_EPOCHS compiled chunks."""
    steps = brax_trained_steps(settings)
    config = dataclasses.replace(default_config(env_id), **{**settings, "total_steps": steps})
    learner = make_ppo(config, make(env_id))
    per_chunk = steps // config.batch_size // BRAX_EPOCHS
    start = time.perf_counter()
    keys = jax.random.PRNGKey(seed)[None]
    state = init_stacked(learner, keys)
    chunk = make_chunk_fn(learner, per_chunk)
    compiled = chunk.lower(state).compile()
    compile_s = time.perf_counter() - start
    run_start = time.perf_counter()
    for _ in range(BRAX_EPOCHS):
        state, metrics = compiled(state)
    jax.block_until_ready(state)
    run_s = time.perf_counter() - run_start
    eval_return = jax.jit(jax.vmap(learner.evaluate))(state, jax.random.PRNGKey(seed + 1)[None])["eval_return"]
    return {"end_to_end_s": time.perf_counter() - start, "compile_s": compile_s,
            "steps": steps, "steady_sps": steps / run_s,
            "return": float(eval_return[0]), "batch": config.num_envs}


def run_brax(env_id: str, settings: dict, seed: int) -> dict:
    restore_brax_device_helpers()
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo

    family, name = env_id.split("/")
    if family == "dmc":
        from mujoco_playground import registry, wrapper

        from jaxrl_suite.envs.playground_env import default_impl

        impl = default_impl()  # the same MJX implementation our adapter uses
        load = functools.partial(registry.load, name, config_overrides={"impl": impl})
        env, eval_env, wrap = load(), load(), wrapper.wrap_for_brax_training
        episode_length = 1000
    else:
        from brax import envs

        from jaxrl_suite.envs.brax_env import default_backend

        # the same physics pipeline our adapter uses (brax's own default is "generalized")
        load = functools.partial(envs.get_environment, name, backend=default_backend(name))
        env, eval_env, wrap, episode_length = load(), load(), None, 1000
    returns: list[float] = []
    steps: list[int] = []
    training_sps: list[float] = []

    def progress(num_steps, metrics):
        steps.append(int(num_steps))
        returns.append(float(metrics.get("eval/episode_reward", np.nan)))
        training_sps.append(float(metrics.get("training/sps", np.nan)))

    network_factory = functools.partial(
        ppo_networks.make_ppo_networks, policy_hidden_layer_sizes=(32,) * 4, value_hidden_layer_sizes=(256,) * 5
    )
    start = time.perf_counter()
    ppo.train(
        environment=env, eval_env=eval_env, wrap_env_fn=wrap, num_timesteps=settings["total_steps"],
        num_envs=settings["num_envs"], episode_length=episode_length, unroll_length=settings["rollout_length"],
        batch_size=settings["num_envs"] // settings["num_minibatches"], num_minibatches=settings["num_minibatches"],
        num_updates_per_batch=settings["num_epochs"], learning_rate=settings["learning_rate"],
        entropy_cost=settings["entropy_coef"], discounting=settings["gamma"],
        reward_scaling=settings["reward_scale"], normalize_observations=True, clipping_epsilon=settings["clip_eps"],
        gae_lambda=settings["gae_lambda"], max_grad_norm=settings["max_grad_norm"], num_evals=BRAX_NUM_EVALS,
        num_eval_envs=NUM_EVAL_ENVS, deterministic_eval=True, num_resets_per_eval=0, seed=seed,
        network_factory=network_factory, progress_fn=progress,
    )
    end_to_end = time.perf_counter() - start
    expected_steps = brax_trained_steps(settings)
    if steps[-1] != expected_steps:
        raise RuntimeError(f"brax trained {steps[-1]} env steps, ours {expected_steps}")
    # progress fires after each eval: [0] initial, [1] after the first (compiling) training
    # epoch, [2] after the second, already compiled epoch, whose `training/sps` is brax's own
    # training rate without evaluation (measured like ours: compiled updates only).
    return {"end_to_end_s": end_to_end, "compile_s": float("nan"), "steps": steps[-1],
            "steady_sps": training_sps[-1], "return": returns[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", action="append", help="env ids; default dmc/CartpoleBalance")
    parser.add_argument("--total-steps", type=int, default=1_000_000)
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--unroll", type=int, default=30)
    parser.add_argument("--minibatches", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1,
                        help="train each side once per seed seed..seed+SEEDS-1 (returns vary widely between seeds)")
    parser.add_argument("--skip-brax", action="store_true")
    args = parser.parse_args()
    if args.total_steps < 1:
        parser.error(f"--total-steps must be positive (got {args.total_steps}); both sides train "
                     f"{BRAX_EPOCHS} x ceil(total / ({BRAX_EPOCHS} x iteration)) whole iterations")
    settings = shared_settings(args)
    print(f"device {device_description()}; settings {settings}", flush=True)
    header = ["env", "side", "seed", "end-to-end s", "compile s", "steady steps/s", "final eval return", "steps"]
    rows, summary = [], []
    for env_id in args.env or ["dmc/CartpoleBalance"]:
        runs: dict[str, list[dict]] = {"jaxrl_suite": [], "brax.training": []}
        for seed in range(args.seed, args.seed + args.seeds):
            ours = run_ours(env_id, settings, seed)
            runs["jaxrl_suite"].append(ours)
            rows.append([env_id, "jaxrl_suite", seed, f"{ours['end_to_end_s']:.1f}", f"{ours['compile_s']:.1f}",
                         f"{ours['steady_sps']:,.0f}", f"{ours['return']:.1f}", ours["steps"]])
            print(markdown_table(header, rows[-1:]), flush=True)
            if not args.skip_brax:
                brax = run_brax(env_id, settings, seed)
                runs["brax.training"].append(brax)
                rows.append([env_id, "brax.training", seed, f"{brax['end_to_end_s']:.1f}", "-",
                             f"{brax['steady_sps']:,.0f} (2nd epoch, brax's own)", f"{brax['return']:.1f}", brax["steps"]])
                print(markdown_table(header, rows[-1:]), flush=True)
        summary.append(summarize(env_id, runs, raw_env_steps_per_second(env_id, args.num_envs, 200, repeats=1),
                                 args.num_envs))
    print("\n" + markdown_table(header, rows))
    print("\n".join(summary))


def summarize(env_id: str, runs: dict[str, list[dict]], raw_sps: float, num_envs: int) -> str:
    """One line per env: medians of the speeds over seeds, mean returns with standard errors, ratios."""
    ours = runs["jaxrl_suite"]
    ours_sps = float(np.median([run["steady_sps"] for run in ours]))
    line = (f"{env_id}: raw env rate at batch {num_envs}: {raw_sps:,.0f} steps/s; ours trains at "
            f"{ours_sps / raw_sps:.2f} of it; final return ours {mean_and_error([run['return'] for run in ours])}")
    brax = runs["brax.training"]
    if brax:
        brax_sps = float(np.median([run["steady_sps"] for run in brax]))
        end_to_end = float(np.median([run["end_to_end_s"] for run in brax])) / float(
            np.median([run["end_to_end_s"] for run in ours]))
        line += (f", brax {mean_and_error([run['return'] for run in brax])}; speed ratio "
                 f"ours/brax (medians over seeds): steady {ours_sps / brax_sps:.2f}, end-to-end {end_to_end:.2f}")
    return line


if __name__ == "__main__":
    main()
