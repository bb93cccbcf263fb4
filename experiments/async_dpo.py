"""Asynchronous off-policy online DPO (arXiv 2410.18252) on the bag-of-words task: robustness to N, and async speed.

One shared SFT model; {dpo, rloo} x N x seeds at equal episodes (win rate vs N with bootstrap CIs, win rate vs KL),
then sync vs async DPO: time to a target score against the ideal (t_gen + t_train) / max(t_gen, t_train).
Run: python experiments/async_dpo.py --preset smoke|cpu|gpu [--out runs/async_dpo_PRESET]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from jaxrl_suite.lm.rlhf.loop import OnlineConfig, run_online  # noqa: E402
from jaxrl_suite.lm.rlhf.sft import SFTConfig, train_sft  # noqa: E402
from jaxrl_suite.runner import read_metrics  # noqa: E402
from jaxrl_suite.runner.plots import save_figure  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "results" / "async_dpo"
BOOTSTRAP_SAMPLES = 2000


@dataclasses.dataclass(frozen=True)
class Preset:
    """The SFT model, the grid at equal episodes, and the sync-vs-async comparison."""

    sft: SFTConfig
    online: OnlineConfig
    """The shared online settings; generation_batch is set to N x minibatch for each N."""
    minibatch: int
    ns: tuple[int, ...]
    algos: tuple[str, ...]
    seeds: tuple[int, ...]
    async_staleness: int = 1


PRESETS = {
    # Seconds of compute per run: wiring check of every output, no claim.
    "smoke": Preset(
        sft=SFTConfig(steps=60, log_every=30, eval_prompts=64, progress=False),
        online=OnlineConfig(episodes=64, eval_every=2, eval_prompts=64, learning_rate=3e-4, progress=False),
        minibatch=8, ns=(1, 2), algos=("dpo",), seeds=(0,)),
    # The CPU grid: N in {1, 4, 16} x {dpo, rloo} x 3 seeds on the default SFT model (not yet run).
    "cpu": Preset(
        sft=SFTConfig(progress=False),
        online=OnlineConfig(episodes=2048, eval_every=32, eval_prompts=256, learning_rate=3e-4, progress=False),
        minibatch=8, ns=(1, 4, 16), algos=("dpo", "rloo"), seeds=(0, 1, 2)),
    # The paper's 125M FoX architecture and N up to 64 (not yet run).
    "gpu": Preset(
        sft=SFTConfig(model="fox-125m", d_model=768, num_heads=12, num_layers=12, mlp_multiple_of=256,
                      examples=65536, steps=2000, batch_size=64, learning_rate=1e-3, warmup_steps=100,
                      progress=False),
        online=OnlineConfig(episodes=65536, eval_every=256, eval_prompts=512, learning_rate=1e-5, progress=False),
        minibatch=16, ns=(1, 4, 16, 64), algos=("dpo", "rloo"), seeds=(0, 1, 2)),
}


def online_config(preset: Preset, algo: str, n: int, seed: int, mode: str = "sync") -> OnlineConfig:
    """N minibatches of preset.minibatch prompts per round; preset.online.eval_every counts rounds at N = 1 and
    is divided by N, so every N evaluates at the same episodes."""
    rounds_between = max(1, preset.online.eval_every // n) if preset.online.eval_every else 0
    fields = dict(algo=algo, off_policy_n=n, generation_batch=n * preset.minibatch, seed=seed, mode=mode,
                  eval_every=rounds_between)
    if mode == "async":
        fields["max_staleness"] = preset.async_staleness
    return dataclasses.replace(preset.online, **fields)


def finished(run_dir: pathlib.Path, config: OnlineConfig) -> bool:
    records = read_metrics(run_dir)
    return bool(records) and records[-1]["updates"] == config.rounds * config.off_policy_n


def run_all(preset: Preset, out: pathlib.Path) -> dict[str, list[dict]]:
    sft_dir = out / "sft"
    if not (sft_dir / "checkpoints").is_dir():
        train_sft(preset.sft, sft_dir, overwrite=True)
    jobs = [(f"{algo}-n{n}-s{seed}", online_config(preset, algo, n, seed))
            for algo in preset.algos for n in preset.ns for seed in preset.seeds]
    jobs += [(f"async-dpo-n1-s{seed}", online_config(preset, "dpo", 1, seed, "async")) for seed in preset.seeds]
    runs = {}
    for name, config in jobs:
        run_dir = out / name
        if not finished(run_dir, config):
            start = time.monotonic()
            run_online(config, sft_dir, run_dir, overwrite=True)
            print(f"{name}: {time.monotonic() - start:.0f} s", flush=True)
        runs[name] = read_metrics(run_dir)
    return runs


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of values."""
    means = rng.choice(values, size=(BOOTSTRAP_SAMPLES, values.size)).mean(axis=1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def final(records: list[dict], key: str) -> float:
    return [r for r in records if key in r][-1][key]


def robustness_to_n(preset: Preset, runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Final win rate and gold score per (algo, N): mean, bootstrap CI over seeds, and the drop from N = 1."""
    rng = np.random.default_rng(0)
    summary: dict[str, dict] = {}
    for algo in preset.algos:
        base = np.asarray([final(runs[f"{algo}-n1-s{s}"], "win_rate") for s in preset.seeds])
        for n in preset.ns:
            wins = np.asarray([final(runs[f"{algo}-n{n}-s{s}"], "win_rate") for s in preset.seeds])
            gold = np.asarray([final(runs[f"{algo}-n{n}-s{s}"], "eval_gold_score") for s in preset.seeds])
            kl = np.asarray([final(runs[f"{algo}-n{n}-s{s}"], "eval_kl_to_sft") for s in preset.seeds])
            drop = base - wins
            summary[f"{algo}-n{n}"] = {
                "win_rate": float(wins.mean()), "win_rate_ci": bootstrap_ci(wins, rng),
                "drop_from_n1": float(drop.mean()), "drop_from_n1_ci": bootstrap_ci(drop, rng),
                "gold_score": float(gold.mean()), "gold_score_ci": bootstrap_ci(gold, rng),
                "kl_to_sft": float(kl.mean()), "seeds": len(preset.seeds)}
    return summary


def _seconds_to(records: list[dict], key: str, target: float) -> float:
    """Training wall time (evaluations excluded) when records[key] first reaches target; NaN if never."""
    for record in records:
        if key in record and record["updates"] > 0 and record[key] >= target:
            return record["wall_time"] - record["eval_time"]
    return float("nan")


def async_speed(preset: Preset, runs: dict[str, list[dict]]) -> dict[str, float]:
    """Sync vs async DPO at N = 1: time to a target gold score (halfway from the SFT score to the sync runs'
    final mean) and the ideal speed-up from the sync runs' per-round generation and learning times."""
    sync = [runs[f"dpo-n1-s{s}"] for s in preset.seeds]
    lagged = [runs[f"async-dpo-n1-s{s}"] for s in preset.seeds]
    start = sync[0][0]["eval_gold_score"]
    target = start + 0.5 * (np.mean([final(r, "eval_gold_score") for r in sync]) - start)
    t_gen = np.mean([r["generation_s"] for runs_ in sync for r in runs_ if "generation_s" in r])
    t_train = np.mean([r["learning_s"] for runs_ in sync for r in runs_ if "learning_s" in r])
    sync_times = [_seconds_to(r, "eval_gold_score", target) for r in sync]
    async_times = [_seconds_to(r, "eval_gold_score", target) for r in lagged]
    return {"target_gold_score": float(target), "t_generation_s": float(t_gen), "t_learning_s": float(t_train),
            "ideal_speedup": float((t_gen + t_train) / max(t_gen, t_train)),
            "sync_seconds_to_target": sync_times, "async_seconds_to_target": async_times,
            "measured_speedup": float(np.nanmean(sync_times) / np.nanmean(async_times)),
            "sync_total_s": float(np.mean([r[-1]["wall_time"] - r[-1]["eval_time"] for r in sync])),
            "async_total_s": float(np.mean([r[-1]["wall_time"] - r[-1]["eval_time"] for r in lagged])),
            "async_final_gold_score": float(np.mean([final(r, "eval_gold_score") for r in lagged])),
            "sync_final_gold_score": float(np.mean([final(r, "eval_gold_score") for r in sync]))}


def draw(preset: Preset, summary: dict[str, dict], runs: dict[str, list[dict]], out: pathlib.Path) -> None:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.5))
    for algo in preset.algos:
        means = [summary[f"{algo}-n{n}"]["win_rate"] for n in preset.ns]
        cis = np.asarray([summary[f"{algo}-n{n}"]["win_rate_ci"] for n in preset.ns])
        axis.errorbar(preset.ns, means, yerr=[np.subtract(means, cis[:, 0]), np.subtract(cis[:, 1], means)],
                      marker="o", capsize=3, label=algo)
    axis.set(xscale="log", xlabel="off-policy N", ylabel="final win rate vs reference", xticks=list(preset.ns))
    axis.set_xticklabels([str(n) for n in preset.ns])
    axis.legend()
    save_figure(figure, out / "win_rate_vs_n.png")
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for name, records in runs.items():
        kl = [r["eval_kl_to_sft"] for r in records if "win_rate" in r]
        wins = [r["win_rate"] for r in records if "win_rate" in r]
        axis.plot(kl, wins, marker=".", alpha=0.6, label=name.rsplit("-s", 1)[0] if name.endswith("s0") else None)
    axis.set(xlabel="KL to SFT (nats per response)", ylabel="win rate vs reference")
    axis.legend(fontsize=7)
    save_figure(figure, out / "win_rate_vs_kl.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    out = pathlib.Path(args.out or f"runs/async_dpo_{args.preset}")
    start = time.monotonic()
    runs = run_all(preset, out)
    results = RESULTS / args.preset
    results.mkdir(parents=True, exist_ok=True)
    summary = robustness_to_n(preset, runs)
    speed = async_speed(preset, runs)
    from jaxrl_suite.machine import machine_info

    payload = {"preset": args.preset, "command": f"python experiments/async_dpo.py --preset {args.preset}",
               "robustness_to_n": summary, "async_vs_sync": speed, "sft_final": read_metrics(out / "sft")[-1],
               "wall_seconds": time.monotonic() - start, "machine": machine_info()}
    (results / "summary.json").write_text(json.dumps(payload, indent=2) + "\n")
    draw(preset, summary, runs, results)
    for name, row in summary.items():
        print(f"{name}: win rate {row['win_rate']:.3f} {row['win_rate_ci']}, drop from N=1 {row['drop_from_n1']:+.3f}, "
              f"gold {row['gold_score']:.3f}, KL {row['kl_to_sft']:.2f}")
    print(f"async vs sync: measured speed-up {speed['measured_speedup']:.2f} (ideal {speed['ideal_speedup']:.2f}); "
          f"results in {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
