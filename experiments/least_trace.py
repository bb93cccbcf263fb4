"""Per-step trace of LEAST in one seed of SAC or TD3: Q_i, eps_i, omega_i, the margin and the
decision of every env at every step, to see why episodes stop (docs/least.md has a reading).

Built like a task of experiments/least.py's cpu preset; runs the jitted update one env step at
a time, prints the stop share and the Q trajectory of the first stopped episodes of env 0.
Run: python experiments/least_trace.py --algo td3 --env dmc/CartpoleSwingup --total-steps 40000
     [--least spread_margin=4 --learner initial_temperature=0.001 --seed 0 --episodes 2 --every 10
      --out trace.npz]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from experiments.least import (  # noqa: E402
    NOISE_CAPS,
    cpu_task,
    field_overrides,
    least_overrides,
    variant_config,
    with_least_fields,
)
from jaxrl_suite import algorithms  # noqa: E402
from jaxrl_suite.early_stop import rule_threshold  # noqa: E402


def run_trace(algo: str, env_id: str, total_steps: int, seed: int, least_fields: dict,
              learner_fields: dict | None = None) -> dict[str, np.ndarray]:
    """[updates, num_envs] arrays of the learner's LEAST trace (`ReplayLearner.traced_update`)
    plus [updates] least_stopped_count / least_stopped_length_sum. `learner_fields` replace
    fields of the preset's learner config (e.g. SAC's initial_temperature)."""
    task = with_least_fields(cpu_task(env_id, total_steps), least_fields)
    config = dataclasses.replace(variant_config(task, algo, "least"), **(learner_fields or {}))
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
    decided = trace["stop"]  # a stop needs the rule to have held, so it implies `active`
    if decided.any():
        ratio = trace["q"][decided] / trace["q_threshold"][decided]
        print(f"at the stop decisions: median Q / eps {np.median(ratio):.2f}, median omega "
              f"{np.median(trace['omega'][decided]):.2f}, median margin {np.median(trace['margin'][decided]):.3f}, "
              f"median step index {np.median(trace['step_index'][decided]):.0f}")
    print_q_scale(trace)
    bound = np.asarray(rule_threshold(trace["q_threshold"], trace["omega"], trace["margin"]))
    for update in np.flatnonzero(decided[:, 0])[:episodes]:
        start = update - int(trace["step_index"][update, 0])
        print(f"env 0, episode from update {start}: stop decided at step index {trace['step_index'][update, 0]}")
        for row in range(max(start, 0), update + 1, every):
            print(f"  i {trace['step_index'][row, 0]:4d}  Q {trace['q'][row, 0]:7.2f}  eps {trace['q_threshold'][row, 0]:7.2f}"
                  f"  omega {trace['omega'][row, 0]:5.2f}  threshold {bound[row, 0]:7.2f}")


def print_q_scale(trace: dict[str, np.ndarray], parts: int = 4) -> None:
    """Per part of the run: how often the rule applied, the size of eps_i where it did (a
    multiplicative margin vanishes where |eps_i| is small) and the spread of Q."""
    updates = trace["q"].shape[0]
    for part in range(1, parts):  # the first part is warm-up
        rows = slice(part * updates // parts, (part + 1) * updates // parts)
        active = trace["active"][rows].astype(bool)
        eps = np.abs(trace["q_threshold"][rows][active])
        quartiles = np.percentile(trace["q"][rows], [25, 50, 75])
        eps_text = f"median |eps| {np.median(eps):.2f}, share |eps| < 1: {np.mean(eps < 1):.2f}" if eps.size else "no eps"
        print(f"updates {rows.start}-{rows.stop}: rule active {active.mean():.2f}, {eps_text}, "
              f"Q quartiles {quartiles[0]:.2f} / {quartiles[1]:.2f} / {quartiles[2]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algo", choices=sorted(NOISE_CAPS), default="td3")
    parser.add_argument("--env", default="dmc/CartpoleSwingup")
    parser.add_argument("--total-steps", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--least", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a LeastConfig field of the cpu preset's task, e.g. --least spread_margin=4")
    parser.add_argument("--learner", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a scalar field of the learner's config, e.g. --learner initial_temperature=0.001")
    parser.add_argument("--episodes", type=int, default=2, help="stopped episodes of env 0 to print")
    parser.add_argument("--every", type=int, default=10, help="print every this many steps of those episodes")
    parser.add_argument("--out", default=None, help="write the trace arrays to this .npz file")
    parser.add_argument("--load", default=None, help="summarize a trace written by --out instead of running one")
    args = parser.parse_args()
    if args.load:
        print_summary(dict(np.load(args.load)), args.episodes, args.every)
        return
    learner_class = type(algorithms.default_config(args.algo, args.env))
    trace = run_trace(args.algo, args.env, args.total_steps, args.seed, least_overrides(args.least),
                      field_overrides(args.learner, learner_class, "--learner"))
    print_summary(trace, args.episodes, args.every)
    if args.out:
        np.savez(args.out, **trace)


if __name__ == "__main__":
    main()
