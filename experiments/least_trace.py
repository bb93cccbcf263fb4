"""Per-step trace of LEAST in one seed of SAC or TD3: Q_i, eps_i, omega_i, the margin and the
decision of every env at every step, to see why episodes stop (docs/least.md has a reading).

Built like a task of experiments/least.py's cpu preset; runs the jitted update one env step at
a time, prints the stop share and the Q trajectory of the first stopped episodes of env 0.
Run: python experiments/least_trace.py --algo td3 --env dmc/CartpoleSwingup --total-steps 40000
     [--least spread_margin=4 --seed 0 --episodes 2 --every 10 --out trace.npz]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from experiments.least import NOISE_CAPS, cpu_task, least_overrides, variant_config, with_least_fields  # noqa: E402
from jaxrl_suite import algorithms  # noqa: E402
from jaxrl_suite.early_stop import rule_threshold  # noqa: E402


def run_trace(algo: str, env_id: str, total_steps: int, seed: int, least_fields: dict) -> dict[str, np.ndarray]:
    """[updates, num_envs] arrays of the learner's LEAST trace (`OffPolicyLearner.traced_update`)
    plus [updates] least_stopped_count / least_stopped_length_sum."""
    task = with_least_fields(cpu_task(env_id, total_steps), least_fields)
    config = variant_config(task, algo, "least")
    learner = algorithms.make_learner(algo, config, env_id)
    update = jax.jit(learner.traced_update)
    state = learner.init(jax.random.PRNGKey(seed))
    rows = []
    for _ in range(total_steps // config.num_envs):
        state, metrics, trace = update(state)
        rows.append({**{name: np.asarray(value) for name, value in trace.items()},
                     **{name: np.asarray(metrics[name]) for name in ("least_stopped_count", "least_stopped_length_sum")}})
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


def print_summary(trace: dict[str, np.ndarray], episodes: int, every: int) -> None:
    finished = int(trace["done"].sum())
    stopped = float(trace["least_stopped_count"].sum())
    length = float(trace["least_stopped_length_sum"].sum()) / max(stopped, 1.0)
    print(f"episodes finished {finished}, stopped by LEAST {stopped:.0f} ({stopped / max(finished, 1):.0%}), "
          f"mean stopped length {length:.0f}")
    decided = trace["stop"] & trace["active"]
    if decided.any():
        ratio = trace["q"][decided] / trace["q_threshold"][decided]
        print(f"at the stop decisions: median Q / eps {np.median(ratio):.2f}, median omega "
              f"{np.median(trace['omega'][decided]):.2f}, median margin {np.median(trace['margin'][decided]):.3f}, "
              f"median step index {np.median(trace['step_index'][decided]):.0f}")
    bound = np.asarray(rule_threshold(trace["q_threshold"], trace["omega"], trace["margin"]))
    for update in np.flatnonzero(decided[:, 0])[:episodes]:
        start = update - int(trace["step_index"][update, 0])
        print(f"env 0, episode from update {start}: stop decided at step index {trace['step_index'][update, 0]}")
        for row in range(max(start, 0), update + 1, every):
            print(f"  i {trace['step_index'][row, 0]:4d}  Q {trace['q'][row, 0]:7.2f}  eps {trace['q_threshold'][row, 0]:7.2f}"
                  f"  omega {trace['omega'][row, 0]:5.2f}  threshold {bound[row, 0]:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algo", choices=sorted(NOISE_CAPS), default="td3")
    parser.add_argument("--env", default="dmc/CartpoleSwingup")
    parser.add_argument("--total-steps", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--least", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a LeastConfig field of the cpu preset's task, e.g. --least spread_margin=4")
    parser.add_argument("--episodes", type=int, default=2, help="stopped episodes of env 0 to print")
    parser.add_argument("--every", type=int, default=10, help="print every this many steps of those episodes")
    parser.add_argument("--out", default=None, help="write the trace arrays to this .npz file")
    args = parser.parse_args()
    trace = run_trace(args.algo, args.env, args.total_steps, args.seed, least_overrides(args.least))
    print_summary(trace, args.episodes, args.every)
    if args.out:
        np.savez(args.out, **trace)


if __name__ == "__main__":
    main()
