"""PPO training throughput on CPU against the raw env step rate at the same batch size.

PureJaxRL-like settings on gymnax CartPole-v1; compile time is reported apart from steps/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from benchmarks.common import raw_env_steps_per_second  # noqa: E402
from jaxrl_suite.agents.ppo import PPOConfig, make_ppo  # noqa: E402
from jaxrl_suite.envs import make  # noqa: E402
from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn  # noqa: E402


def ppo_steps_per_second(env_id: str, config: PPOConfig, updates_per_chunk: int, num_chunks: int):
    """(compile seconds, training env steps/s excluding compile) for one seed through the runner's chunks."""
    learner = make_ppo(config, make(env_id))
    start = time.perf_counter()
    state = jax.block_until_ready(init_seeds(learner, 0, 1))
    chunk = make_chunk_fn(learner, updates_per_chunk).lower(state).compile()
    compile_seconds = time.perf_counter() - start
    state, _ = chunk(state)  # warm-up chunk: first-run allocation costs stay out of the timing
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(num_chunks):
        state, metrics = chunk(state)
    jax.block_until_ready((state, metrics))
    elapsed = time.perf_counter() - start
    return compile_seconds, num_chunks * updates_per_chunk * config.batch_size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="gymnax/CartPole-v1")
    parser.add_argument("--env-steps", type=int, default=1_000_000, help="timed training env steps per setting")
    parser.add_argument("--settings", default="4x128,256x128", help="comma-separated NUM_ENVSxROLLOUT")
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, env: {args.env}")
    print(f"{'envs x rollout':>15} {'compile s':>10} {'train steps/s':>14} {'env steps/s':>12} {'fraction':>9}")
    for setting in args.settings.split(","):
        num_envs, rollout_length = (int(part) for part in setting.split("x"))
        # PureJaxRL's CartPole PPO: 4 epochs x 4 minibatches, 64x64 tanh, separate actor/critic.
        config = PPOConfig(num_envs=num_envs, rollout_length=rollout_length, num_epochs=4, num_minibatches=4,
                           total_steps=args.env_steps)
        num_updates = max(2, args.env_steps // config.batch_size)
        num_chunks = 4 if num_updates >= 8 else 2
        compile_seconds, train_rate = ppo_steps_per_second(args.env, config, num_updates // num_chunks,
                                                           num_chunks)
        env_rate = raw_env_steps_per_second(args.env, num_envs, max(rollout_length, 500_000 // num_envs), repeats=3)
        print(f"{setting:>15} {compile_seconds:>10.1f} {train_rate:>14,.0f} {env_rate:>12,.0f} "
              f"{train_rate / env_rate:>9.3f}", flush=True)


if __name__ == "__main__":
    main()
