"""End-to-end speed as a user runs it: `jaxrl train` from process start to exit, against a peer
trainer, each a fresh process with a cold compile cache, sides alternating, medians over repeats.

Prints both sides' wall times, the ratio (peer / ours: above 1 means ours is faster), our
breakdown from the run's timing.json (startup = imports, env build and init outside the loop),
and each side's peak RSS.
Run: python benchmarks/end_to_end.py [--case ppo-dmc|ppo-cartpole-seeds] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BREAKDOWN = ("startup", "init", "compile", "train", "eval", "checkpoint", "logging", "other")


@dataclasses.dataclass(frozen=True)
class Case:
    """One comparison: our `jaxrl train` flags and the peer's side name (run by `peer_side`)."""

    description: str
    train_flags: tuple[str, ...]
    peer: str


# PPO on dmc/CartpoleBalance with brax.training's hyperparameters (benchmarks/ppo_vs_brax.py's
# shared_settings), for exactly the env steps brax's ppo.train runs (1,013,760 for 1M).
PPO_DMC = Case(
    "PPO dmc/CartpoleBalance, 256 envs x 30, 8 minibatches, 4 epochs, 1,013,760 env steps, 1 seed, vs brax.training",
    ("ppo", "--env", "dmc/CartpoleBalance", "--total-steps", "1013760", "--num-envs", "256", "--rollout-length", "30",
     "--num-minibatches", "8", "--num-epochs", "4", "--learning-rate", "1e-3", "--adam-eps", "1e-8",
     "--gamma", "0.995", "--reward-scale", "10", "--entropy-coef", "0.01", "--clip-eps", "0.3",
     "--gae-lambda", "0.95", "--max-grad-norm", "1.0", "--num-eval-envs", "16", "--no-anneal-lr"),
    "brax-ppo-dmc",
)
# PPO on gymnax CartPole-v1 with 8 vmapped seeds, rejax's settings (benchmarks/ppo_vs_rejax.py's
# shared_settings, 4 envs x 128), against rejax's PPO vmapped over the same 8 seeds in one jit.
PPO_CARTPOLE_SEEDS = Case(
    "PPO gymnax/CartPole-v1, 4 envs x 128, 499,712 env steps, 8 vmapped seeds, vs rejax",
    ("ppo", "--env", "gymnax/CartPole-v1", "--total-steps", "499712", "--num-seeds", "8", "--num-envs", "4",
     "--rollout-length", "128", "--num-epochs", "4", "--num-minibatches", "4", "--learning-rate", "5e-4",
     "--adam-eps", "1e-8", "--gamma", "0.99", "--gae-lambda", "0.95", "--clip-eps", "0.2", "--entropy-coef", "0.01",
     "--value-coef", "0.5", "--max-grad-norm", "0.5", "--value-clip-eps", "0.2", "--num-eval-envs", "128",
     "--no-anneal-lr"),
    "rejax-ppo-cartpole-seeds",
)
CASES = {"ppo-dmc": PPO_DMC, "ppo-cartpole-seeds": PPO_CARTPOLE_SEEDS}


def cold_environment(cache_dir: str) -> dict[str, str]:
    """The environment of a first run on a new machine: our compile cache off, JAX's pointed at
    an empty directory (so that a peer that reads JAX_COMPILATION_CACHE_DIR starts cold too)."""
    return {**os.environ, "JAXRL_COMPILATION_CACHE": "off", "JAX_COMPILATION_CACHE_DIR": cache_dir,
            "PYTHONPATH": str(ROOT)}


def timed_process(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GiB, stdout) of one child process; raises if it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited with {code}:\n{output[-3000:]}")
    return wall, usage.ru_maxrss / 2**20, output


def run_ours(case: Case, work: pathlib.Path, index: int) -> dict:
    out = work / f"ours-{index}"
    jaxrl = pathlib.Path(sys.executable).with_name("jaxrl")
    wall, rss, output = timed_process([str(jaxrl), "train", *case.train_flags, "--out", str(out)],
                                      cold_environment(str(work / f"cache-ours-{index}")))
    timing = json.loads((out / "timing.json").read_text())
    breakdown = {name: timing.get(name, 0.0) for name in BREAKDOWN if name != "startup"}
    breakdown["startup"] = wall - timing["total"]
    final = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    return {"wall_s": wall, "rss_gib": rss, "breakdown": breakdown, "eval_return": final.get("eval_return"),
            "summary": output.strip().splitlines()[-3]}


def run_peer(case: Case, work: pathlib.Path, index: int) -> dict:
    wall, rss, output = timed_process([sys.executable, __file__, "--peer-side", case.peer],
                                      cold_environment(str(work / f"cache-peer-{index}")))
    result = json.loads(output.strip().splitlines()[-1])
    return {"wall_s": wall, "rss_gib": rss, "eval_return": result["eval_return"]}


def peer_side(name: str) -> None:
    """Runs one peer's whole training in this process and prints {"eval_return": ...} last."""
    if name == "brax-ppo-dmc":
        from benchmarks.ppo_vs_brax import run_brax, shared_settings

        args = argparse.Namespace(num_envs=256, unroll=30, minibatches=8, epochs=4, total_steps=1_000_000)
        result = run_brax("dmc/CartpoleBalance", shared_settings(args), seed=0)
        print(json.dumps({"eval_return": result["return"]}))
    elif name == "rejax-ppo-cartpole-seeds":
        import jax

        from benchmarks.ppo_vs_rejax import shared_settings, whole_run_rejax

        args = argparse.Namespace(num_envs=4, num_steps=128, epochs=4, minibatches=4, lr=5e-4, total_steps=500_000)
        whole_run = whole_run_rejax("CartPole-v1", shared_settings(args))
        returns = jax.jit(jax.vmap(whole_run))(jax.random.split(jax.random.PRNGKey(0), 8))
        print(json.dumps({"eval_return": float(returns.mean())}))
    else:
        raise ValueError(f"unknown peer side {name!r} (valid: {', '.join(case.peer for case in CASES.values())})")


def _walls(runs: list[dict]) -> str:
    return ", ".join(f"{run['wall_s']:.1f}" for run in runs)


def report(case: Case, ours: list[dict], peer: list[dict]) -> str:
    ours_wall = statistics.median(run["wall_s"] for run in ours)
    peer_wall = statistics.median(run["wall_s"] for run in peer)
    parts = ", ".join(f"{name} {statistics.median(run['breakdown'][name] for run in ours):.1f}" for name in BREAKDOWN)
    lines = [
        f"## {case.description}",
        f"ours wall s: {_walls(ours)} (median {ours_wall:.1f}); peer: {_walls(peer)} (median {peer_wall:.1f})",
        f"end-to-end ratio (peer / ours, medians): {peer_wall / ours_wall:.2f}",
        f"our breakdown, medians in s: {parts}",
        f"peak RSS GiB: ours {max(run['rss_gib'] for run in ours):.2f}, peer {max(run['rss_gib'] for run in peer):.2f}",
        f"final eval return: ours {[run['eval_return'] for run in ours]}, peer {[run['eval_return'] for run in peer]}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: every case")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_side:
        peer_side(args.peer_side)
        return
    from jaxrl_suite.machine import describe_machine

    print(f"machine: {describe_machine()}", flush=True)
    for name in args.case or sorted(CASES):
        case = CASES[name]
        ours, peer = [], []
        with tempfile.TemporaryDirectory(prefix="end_to_end-") as work:
            for index in range(args.repeats):  # alternating sides: a slow spell falls on both
                ours.append(run_ours(case, pathlib.Path(work), index))
                print(f"  ours {index}: {ours[-1]['wall_s']:.1f} s; {ours[-1]['summary']}", flush=True)
                peer.append(run_peer(case, pathlib.Path(work), index))
                print(f"  peer {index}: {peer[-1]['wall_s']:.1f} s", flush=True)
        print(report(case, ours, peer), flush=True)


if __name__ == "__main__":
    main()
