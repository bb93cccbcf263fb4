"""Our SAC vs brax.training's SAC on the same Playground DMC task, hyperparameters and budget.

Prints compile/run/end-to-end wall seconds, process CPU seconds, steps/s and the final deterministic return of both, and the ratio.
Run: python benchmarks/sac_vs_brax.py [--env CartpoleBalance] [--total-steps 32768]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.common import (  # noqa: E402
    WorkBound,
    compiled_flops,
    device_description,
    markdown_table,
    matmul_flops_per_second,
    restore_brax_device_helpers,
    time_jitted,
)
from jaxrl_suite.agents.sac import default_config, make_sac  # noqa: E402
from jaxrl_suite.envs import make  # noqa: E402
from jaxrl_suite.runner import scan_updates  # noqa: E402

HIDDEN_SIZES = (256, 256)  # actor and critics on both sides


def shared_settings(args) -> dict:
    """The hyperparameters both trainers get (Playground's DMC SAC recipe, shrunk by the flags).

    brax.training fixes two things that are fields of ours: the temperature's Adam step size
    (3e-4) and the actor's loss on the critic from before the step's critic update.
    """
    return dict(num_envs=args.num_envs, batch_size=args.batch_size, utd_ratio=args.utd, learning_rate=args.lr,
                gamma=0.99, tau=0.005, learning_starts=args.min_replay, buffer_size=args.total_steps,
                normalize_observations=True, critic_layer_norm=True, hidden_sizes=HIDDEN_SIZES,
                target_entropy_scale=0.5, reward_scale=1.0, num_eval_envs=args.eval_envs,
                temperature_learning_rate=3e-4, actor_on_updated_critic=args.actor_on_updated_critic)


@dataclasses.dataclass
class OurRun:
    """Our three compiled phases, each compiled and timed on its own (seconds)."""

    compile_s: float
    prefill_s: float  # random-action steps before learning_starts (brax's replay prefill)
    train_s: float  # every update with gradient steps
    eval_s: float
    train_steps: int  # env steps of the updates with gradient steps
    total_steps: int
    eval_return: float
    cpu_s: float
    gradient_flops_per_env_step: float  # XLA's count of the gradient steps' work, per env step

    @property
    def end_to_end_s(self) -> float:
        return self.compile_s + self.prefill_s + self.train_s + self.eval_s


def run_ours(env_name: str, settings: dict, total_steps: int, seed: int) -> OurRun:
    """Prefill, training and the final evaluation as three compiled programs, so that the
    training rate is measured like brax's per-epoch `training/sps` (no prefill, no evaluation)."""
    learning_rate = settings.pop("learning_rate")
    config = dataclasses.replace(
        default_config(f"dmc/{env_name}"), actor_learning_rate=learning_rate, critic_learning_rate=learning_rate,
        **settings,
    )
    learner = make_sac(config, make(f"dmc/{env_name}"))
    num_updates = total_steps // config.num_envs
    # Update i (0-based) learns once its env steps (i + 1) * num_envs reach learning_starts.
    prefill_updates = min(num_updates, max(0, -(-config.learning_starts // config.num_envs) - 1))
    key = jax.random.PRNGKey(seed)

    def prefill(key):
        return scan_updates(learner, learner.init(key), prefill_updates)[0]

    def train(state):
        return scan_updates(learner, state, num_updates - prefill_updates)[0]

    def evaluate(state):
        return learner.evaluate(state, jax.random.fold_in(key, 1))["eval_return"]

    cpu_start = time.process_time()
    prefilled = time_jitted(prefill, key)
    trained = time_jitted(train, prefilled.output)
    counted = (int(prefilled.output.gradient_steps), int(trained.output.gradient_steps))
    expected = (0, (num_updates - prefill_updates) * config.utd_ratio)
    if counted != expected:
        raise RuntimeError(f"gradient steps after (prefill, training): {counted}, expected {expected}")
    evaluated = time_jitted(evaluate, trained.output)
    batch = jax.tree.map(lambda s: jnp.zeros((config.batch_size, *s.shape), s.dtype), learner.example_transition())
    step_flops = compiled_flops(lambda agent, batch: learner.agent.gradient_step(agent, batch, key, jnp.int32(0)),
                                trained.output.agent, batch)
    return OurRun(
        compile_s=prefilled.compile_s + trained.compile_s + evaluated.compile_s, prefill_s=prefilled.run_s,
        train_s=trained.run_s, eval_s=evaluated.run_s,
        train_steps=(num_updates - prefill_updates) * config.num_envs, total_steps=num_updates * config.num_envs,
        eval_return=float(evaluated.output), cpu_s=time.process_time() - cpu_start,
        gradient_flops_per_env_step=config.utd_ratio * step_flops / config.num_envs,
    )


def run_brax(env_name: str, settings: dict, total_steps: int, seed: int):
    """brax.training.agents.sac.train, timed as a whole; two epochs so the second one's own
    steps/s (reported by brax) is free of compilation."""
    restore_brax_device_helpers()
    from brax.training.agents.sac import networks as sac_networks
    from brax.training.agents.sac import train as sac_train
    from mujoco_playground import registry, wrapper

    def load():
        return registry.load(env_name, config_overrides={"impl": "jax"})

    epoch_metrics = []
    start, cpu_start = time.perf_counter(), time.process_time()
    _, _, metrics = sac_train.train(
        environment=load(), eval_env=load(), wrap_env_fn=wrapper.wrap_for_brax_training,
        num_timesteps=total_steps, episode_length=1000, action_repeat=1, num_envs=settings["num_envs"],
        num_eval_envs=settings["num_eval_envs"], learning_rate=settings["learning_rate"],
        discounting=settings["gamma"], tau=settings["tau"], seed=seed, batch_size=settings["batch_size"],
        num_evals=3, normalize_observations=True, reward_scaling=settings["reward_scale"],
        min_replay_size=settings["learning_starts"], max_replay_size=settings["buffer_size"],
        grad_updates_per_step=settings["utd_ratio"], deterministic_eval=True,
        network_factory=functools.partial(sac_networks.make_sac_networks, hidden_layer_sizes=HIDDEN_SIZES,
                                          q_network_layer_norm=True),
        progress_fn=lambda step, m: epoch_metrics.append(m),
    )
    total_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    steady_sps = float(epoch_metrics[-1].get("training/sps", float("nan")))
    return total_s, steady_sps, float(metrics["eval/episode_reward"]), cpu_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="CartpoleBalance", help="Playground DMC task name")
    parser.add_argument("--total-steps", type=int, default=32_768)
    parser.add_argument("--num-envs", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--utd", type=int, default=8, help="gradient steps per step of all envs")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--min-replay", type=int, default=8192)
    parser.add_argument("--eval-envs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-brax", action="store_true")
    parser.add_argument("--actor-on-updated-critic", action="store_true",
                        help="our side's actor loss uses the just-updated critic (our default) instead of brax's order")
    args = parser.parse_args()
    settings = shared_settings(args)
    print(f"device {device_description()}; env dmc/{args.env}; {args.total_steps:,} env steps; settings {settings}",
          flush=True)

    ours = run_ours(args.env, dict(settings), args.total_steps, args.seed)
    ours_train_sps = ours.train_steps / ours.train_s
    print(f"ours: compile {ours.compile_s:.1f} s, prefill {ours.prefill_s:.1f} s, training {ours.train_s:.1f} s "
          f"({ours_train_sps:,.0f} steps/s), evaluation {ours.eval_s:.1f} s, end to end {ours.end_to_end_s:.1f} s "
          f"({ours.cpu_s:.1f} CPU s), final eval return {ours.eval_return:.1f}", flush=True)
    if args.skip_brax:
        return
    brax_total, brax_steady_sps, brax_return, brax_cpu = run_brax(args.env, dict(settings), args.total_steps,
                                                                  args.seed)
    print(f"brax: end to end {brax_total:.1f} s ({brax_cpu:.1f} CPU s), last epoch {brax_steady_sps:,.0f} steps/s, "
          f"final eval return {brax_return:.1f}", flush=True)
    header = ["trainer", "end-to-end s", "CPU s", "end-to-end steps/s", "training steps/s", "final eval return"]
    rows = [
        ["ours", f"{ours.end_to_end_s:.1f}", f"{ours.cpu_s:.1f}", f"{ours.total_steps / ours.end_to_end_s:,.0f}",
         f"{ours_train_sps:,.0f} (updates after prefill)", f"{ours.eval_return:.1f}"],
        ["brax.training", f"{brax_total:.1f}", f"{brax_cpu:.1f}", f"{args.total_steps / brax_total:,.0f}",
         f"{brax_steady_sps:,.0f} (2nd epoch, brax's own)", f"{brax_return:.1f}"],
    ]
    print("\n" + markdown_table(header, rows))
    print(f"\ntraining speed ratio ours/brax (2nd epoch): {ours_train_sps / brax_steady_sps:.2f}")
    print(f"end-to-end speed ratio ours/brax: {brax_total / ours.end_to_end_s:.2f}")
    # The gradient steps are mostly [batch, width] @ [width, width] products (the hidden layers):
    # how much of the device's rate at that shape does our training phase use?
    bound = WorkBound(ours.gradient_flops_per_env_step, ours.gradient_flops_per_env_step * ours_train_sps,
                      matmul_flops_per_second(args.batch_size, max(HIDDEN_SIZES), max(HIDDEN_SIZES)))
    print("\n" + "\n".join(bound.lines(ours_train_sps, brax_steady_sps, goal_ratio=1.3)))


if __name__ == "__main__":
    main()
