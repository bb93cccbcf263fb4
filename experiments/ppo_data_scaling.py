"""PPO data-collection study (arXiv 2506.03404): envs x rollout length, epochs and trunk sharing.

Each setting's seeds train as one vmapped run; return curves and plasticity diagnostics follow (docs/ppo_data_scaling.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chex  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common import confidence_interval, use_compilation_cache  # noqa: E402
from jaxrl_suite.agents.ppo import PPO, default_config, make_ppo, with_learning_rate  # noqa: E402
from jaxrl_suite.envs.registry import make  # noqa: E402
from jaxrl_suite.plasticity import (  # noqa: E402
    apply_with_capture,
    effective_rank,
    find_unit_layout,
    gradient_kurtosis,
    inactive_fraction,
    redo_scores,
    weight_norm,
)
from jaxrl_suite.plasticity.config import PlasticityConfig  # noqa: E402
from jaxrl_suite.runner import (  # noqa: E402
    RunConfig,
    plot_runs,
    read_metrics,
    records_same_run,
    train_or_continue,
)

DORMANT_THRESHOLD = PlasticityConfig().diagnostic_threshold
DIAGNOSTICS = ("feature_rank", "dormant_ratio", "weight_norm", "gradient_kurtosis", "entropy", "ess")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One data-collection setting: envs, rollout length, epoch multiplier, trunk sharing."""

    num_envs: int
    rollout_length: int
    epoch_multiplier: int = 1
    shared_trunk: bool = False

    @property
    def name(self) -> str:
        trunk = "shared" if self.shared_trunk else "separate"
        return f"N{self.num_envs}-T{self.rollout_length}-E{self.epoch_multiplier}x-{trunk}"

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.rollout_length


def study_groups(small: int, mid: int, large: int, fixed_length: int,
                 varied_at: tuple[str, ...] = ("small", "large")) -> dict[str, list[Setting]]:
    """The four axes of the study; fixed_batch keeps N*T = mid * fixed_length for every setting.

    varied_at: at which of the three N the epochs and trunk axes are run (both: the paper's
    question whether more envs soften the cost of extra epochs; one: a third of their cost)."""
    sizes = {"small": small, "mid": mid, "large": large}
    varied = [sizes[name] for name in varied_at]
    batch = mid * fixed_length
    return {
        "fixed_batch": [Setting(n, batch // n) for n in (small, mid, large)],
        "num_envs": [Setting(n, fixed_length) for n in (small, mid, large)],
        "epochs": [Setting(n, fixed_length, e) for n in varied for e in (1, 2, 4)],
        "trunk": [Setting(n, fixed_length, 1, s) for n in varied for s in (False, True)],
    }


def smoke_groups() -> dict[str, list[Setting]]:
    """A two-point version of every axis, sharing settings so that only 6 programs compile."""
    small, large = Setting(8, 16), Setting(32, 16)
    return {
        "fixed_batch": [Setting(8, 64), large],
        "num_envs": [small, large],
        "epochs": [large, Setting(32, 16, 2), Setting(32, 16, 4)],
        "trunk": [large, Setting(32, 16, 1, True)],
    }


@dataclasses.dataclass(frozen=True)
class Preset:
    """One scale of the study: envs, budget per setting, seeds, and the settings grid."""

    env_ids: tuple[str, ...]
    total_steps: int
    num_seeds: int
    groups: dict[str, list[Setting]]
    probe_size: int = 256
    log_points: int = 10


PRESETS = {
    # 3 envs x 8 settings x 20,480 steps x 2 seeds, for 30 minutes on a 2-core CPU. Training dominates
    # (its cost grows with env steps x epochs), so the epochs and trunk axes run at N = 32 only; the
    # N x epochs interaction is in "cpu-wide" and "gpu". Measured in docs/ppo_data_scaling.md.
    "cpu": Preset(("gymnax/Breakout-MinAtar", "gymnax/SpaceInvaders-MinAtar", "dmc/CartpoleBalance"),
                  total_steps=20_480, num_seeds=2, groups=study_groups(8, 32, 128, 16, varied_at=("mid",))),
    # The earlier cpu preset: 11 settings per env at 40,960 steps, about 1 h 45 min of CPU here.
    "cpu-wide": Preset(("gymnax/Breakout-MinAtar", "gymnax/SpaceInvaders-MinAtar", "dmc/CartpoleBalance"),
                       total_steps=40_960, num_seeds=2, groups=study_groups(8, 32, 128, 32)),
    # Paper-like scale (Atari-10 used 100M steps, 5 seeds); documented, not run here.
    "gpu": Preset(("gymnax/Breakout-MinAtar", "gymnax/SpaceInvaders-MinAtar", "gymnax/Asterix-MinAtar",
                   "gymnax/Freeway-MinAtar", "dmc/CartpoleBalance", "dmc/CheetahRun"),
                  total_steps=10_000_000, num_seeds=5, groups=study_groups(8, 32, 128, 128),
                  probe_size=1024, log_points=50),
    # Every axis with one compile per distinct setting (6), one env, a few updates each.
    "smoke": Preset(("gymnax/Breakout-MinAtar",), total_steps=8192, num_seeds=2,
                    groups=smoke_groups(), probe_size=128, log_points=2),
}


def unique_settings(groups: dict[str, list[Setting]]) -> list[Setting]:
    """Every setting once, in first-seen order."""
    return list(dict.fromkeys(s for settings in groups.values() for s in settings))


def ppo_config(env_id: str, setting: Setting, total_steps: int):
    base = default_config(env_id)
    extra = {"critic_hidden_sizes": None} if setting.shared_trunk else {}
    return dataclasses.replace(
        base, num_envs=setting.num_envs, rollout_length=setting.rollout_length,
        num_epochs=base.num_epochs * setting.epoch_multiplier, shared_trunk=setting.shared_trunk,
        total_steps=total_steps, **extra,
    ).validate()


# ------------------------------------------------------------------------------ diagnostics


def normalized_ess(log_ratio: jax.Array) -> jax.Array:
    """(sum w)^2 / (n sum w^2) of importance weights w = exp(log_ratio) [n] -> [] in (0, 1]."""
    chex.assert_rank(log_ratio, 1)
    weights = jnp.exp(log_ratio - log_ratio.max())  # scale-free: shift for stability
    return jnp.square(weights.sum()) / (log_ratio.shape[0] * jnp.square(weights).sum())


def feature_diagnostics(layout, apply_fn, params: Any, probe_inputs: jax.Array) -> dict[str, jax.Array]:
    """Dormant ratio (ReDo scores) and mean effective rank of the features the output heads read."""
    _, capture = apply_with_capture(layout, apply_fn, params, None, probe_inputs)
    ranks = [effective_rank(f).astype(jnp.float32) for f in capture.features.values()]
    return {"dormant_ratio": inactive_fraction(redo_scores(capture), DORMANT_THRESHOLD),
            "feature_rank": jnp.mean(jnp.stack(ranks))}


def make_diagnose(learner: PPO, layout, probe_size: int):
    """state (one seed), key -> the study's diagnostics on a fresh rollout of the final policy.

    ESS: the fresh batch is collected under params θ, one PPO iteration (num_epochs epochs at the
    un-annealed learning rate) gives θ', and ESS is computed from the ratios π_θ'/π_θ on that batch.
    """

    def diagnose(state, key: jax.Array) -> dict[str, jax.Array]:
        rollout_key, epochs_key = jax.random.split(key)
        _, trajectory, _ = learner.rollout(state.params, state.obs_stats, state.env_state, rollout_key)
        batch, _ = learner.make_batch(trajectory)
        inputs = learner._network_input(state.obs_stats, batch.obs[:probe_size])
        grads, loss_metrics = jax.grad(learner.ppo_loss, has_aux=True)(state.params, state.obs_stats, batch)
        opt_state = with_learning_rate(state.opt_state, jnp.asarray(learner.config.learning_rate, jnp.float32))
        (new_params, *_), *_ = learner.run_epochs(state.params, opt_state, state.obs_stats, batch, epochs_key)
        policy, _ = learner._policy_and_value(new_params, state.obs_stats, batch.obs)
        log_ratio = policy.log_prob(batch.raw_action) - batch.old_log_prob
        return {
            **feature_diagnostics(layout, learner.network.apply, state.params, inputs),
            "weight_norm": weight_norm(state.params),
            "gradient_kurtosis": gradient_kurtosis(grads),
            "entropy": loss_metrics["entropy"],
            "ess": normalized_ess(log_ratio),
        }

    return diagnose


def diagnose_seeds(learner: PPO, stacked_state, probe_size: int, seed: int) -> dict[str, list[float]]:
    """Runs the diagnostics vmapped over the seeds of a trained run: {name: [per seed]}."""
    first = jax.tree.map(lambda x: x[0], stacked_state)
    probe_obs = learner._network_input(first.obs_stats, first.env_state.obs[:1])
    layout = find_unit_layout(learner.network.apply, first.params, probe_obs)
    num_seeds = jax.tree.leaves(stacked_state)[0].shape[0]
    keys = jax.random.split(jax.random.PRNGKey(seed + 10_000), num_seeds)
    values = jax.jit(jax.vmap(make_diagnose(learner, layout, probe_size)))(stacked_state, keys)
    return {name: np.asarray(v, np.float64).tolist() for name, v in jax.device_get(values).items()}


# -------------------------------------------------------------------------------- running


def run_setting(env_id: str, setting: Setting, preset: Preset, out: pathlib.Path, seed: int,
                overwrite: bool = False) -> dict[str, Any]:
    """Trains all seeds of one setting (one vmapped program) and returns its result record.

    Without `overwrite` a setting finished earlier with the same configuration is reused and an
    interrupted one continues from its last checkpoint; a directory holding a different run is
    refused (RunDirectoryError) rather than replaced.
    """
    config = ppo_config(env_id, setting, preset.total_steps)
    learner = make_ppo(config, make(env_id))
    run = RunConfig(total_steps=preset.total_steps, seed=seed, num_seeds=preset.num_seeds,
                    log_every=max(config.batch_size, preset.total_steps // preset.log_points),
                    eval_every=0, tensorboard=False, progress=False)
    run_dir = out / env_slug(env_id) / setting.name
    if not overwrite and records_same_run(run_dir, "ppo", env_id, run, config) and \
            (run_dir / "diagnostics.json").exists():
        print(f"   reusing the finished run in {run_dir}", flush=True)
        return json.loads((run_dir / "diagnostics.json").read_text())
    result = train_or_continue(learner, run, run_dir, algo="ppo", env_id=env_id, overwrite=overwrite)
    final = read_metrics(run_dir)[-1]  # this call's records miss what ran before a resume
    record = {"env_id": env_id, "setting": dataclasses.asdict(setting), "name": setting.name,
              "run_dir": str(run_dir), "env_steps": final["env_steps"], "wall_time": final["wall_time"],
              "eval_return": final.get("eval_return_per_seed"),
              "episode_return": final.get("episode_return_per_seed"),
              "diagnostics": diagnose_seeds(learner, result.state, preset.probe_size, seed)}
    (run_dir / "diagnostics.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def env_slug(env_id: str) -> str:
    return env_id.replace("/", "_")


def mean_ci(values) -> str:
    if values is None:
        return "n/a"
    mean, low, high = confidence_interval(np.array([np.nan if v is None else v for v in values]))
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]"


def write_table(records: list[dict[str, Any]], path: pathlib.Path) -> None:
    header = ["env", "setting", "env steps", "eval return", *DIAGNOSTICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        cells = [r["env_id"], r["name"], str(r["env_steps"]), mean_ci(r["eval_return"]),
                 *(mean_ci(r["diagnostics"][d]) for d in DIAGNOSTICS)]
        lines.append("| " + " | ".join(cells) + " |")
    note = "Mean [95% t-interval] over seeds; diagnostics on the final train state (see docs/ppo_data_scaling.md).\n\n"
    path.write_text(note + "\n".join(lines) + "\n")


def plot_diagnostics_vs_envs(records: list[dict[str, Any]], settings: list[Setting], path: pathlib.Path) -> None:
    """One panel per diagnostic: mean over seeds vs num_envs (the num_envs axis), one line per env."""
    figure, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for axis, name in zip(axes.ravel(), DIAGNOSTICS, strict=True):
        for env_id in dict.fromkeys(r["env_id"] for r in records):
            points = sorted((r["setting"]["num_envs"], np.nanmean(r["diagnostics"][name])) for r in records
                            if r["env_id"] == env_id and Setting(**r["setting"]) in settings)
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=env_id.split("/")[-1])
        axis.set_xscale("log", base=2)
        axis.set_xlabel("num envs (fixed rollout length)")
        axis.set_title(name.replace("_", " "))
        axis.grid(alpha=0.3)
    axes.ravel()[0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_returns(records: list[dict[str, Any]], groups: dict[str, list[Setting]], out: pathlib.Path) -> None:
    """Episode return vs env steps for each group of settings, per env."""
    for env_id in dict.fromkeys(r["env_id"] for r in records):
        by_setting = {Setting(**r["setting"]): r["run_dir"] for r in records if r["env_id"] == env_id}
        for group, settings in groups.items():
            dirs = [by_setting[s] for s in settings if s in by_setting]
            try:
                plot_runs(dirs, out / f"return_{env_slug(env_id)}_{group}.png", title=f"{env_id}: {group}")
            except ValueError as error:  # no episode finished in any run of the group
                print(f"skipped return plot {env_id}/{group}: {error}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--smoke", action="store_true", help="the tiny 'smoke' preset (overrides --preset)")
    parser.add_argument("--total-steps", type=int, help="env steps per setting and seed (overrides the preset)")
    parser.add_argument("--num-seeds", type=int, help="seeds per setting (overrides the preset)")
    parser.add_argument("--envs", nargs="+", help="env ids (overrides the preset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/ppo_data_scaling")
    parser.add_argument("--overwrite", action="store_true",
                        help="retrain settings already in --out (default: reuse finished ones, resume interrupted ones)")
    return parser.parse_args(argv)


def resolve_preset(args: argparse.Namespace) -> Preset:
    preset = PRESETS["smoke" if args.smoke else args.preset]
    overrides = {k: v for k, v in (("total_steps", args.total_steps), ("num_seeds", args.num_seeds),
                                    ("env_ids", tuple(args.envs) if args.envs else None)) if v is not None}
    return dataclasses.replace(preset, **overrides)


def main(argv=None) -> None:
    args = parse_args(argv)
    preset = resolve_preset(args)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for env_id in preset.env_ids:
        for setting in unique_settings(preset.groups):
            print(f"== {env_id} {setting.name}", flush=True)
            records.append(run_setting(env_id, setting, preset, out, args.seed, args.overwrite))
            (out / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    write_table(records, out / "summary.md")
    plot_returns(records, preset.groups, out)
    plot_diagnostics_vs_envs(records, preset.groups["num_envs"], out / "diagnostics_vs_num_envs.png")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    use_compilation_cache()  # not in main(): tests call main() and leave the cache alone
    main()
