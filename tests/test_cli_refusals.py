"""`jaxrl` refusals and the run-directory cases around them, through `cli.main`: each refusal is one
line on stderr with exit code 2, raised before anything compiles and with the run directory intact.

One tiny PPO run (CartPole, 2 seeds, 4 updates of 64 env steps) is trained once and copied per test.
"""

import contextlib
import dataclasses
import io
import json
import re
import shutil

import numpy as np
import pytest

from jaxrl_suite import stats
from jaxrl_suite.cli import main
from jaxrl_suite.runner import plots, read_metrics
from jaxrl_suite.runner.timing import describe_timing

TINY_PPO = ["--num-envs", "4", "--rollout-length", "16", "--hidden-sizes", "16", "--num-minibatches", "2",
            "--num-epochs", "1", "--num-eval-envs", "2", "--no-anneal-lr", "--no-progress", "--no-tensorboard"]
TINY_RUN = ["--total-steps", "256", "--num-seeds", "2", "--log-every", "64"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """(run directory, stdout of `jaxrl train`) of the tiny PPO run; tests that change it copy it."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["train", "ppo", "--env", "gymnax/CartPole-v1", *TINY_PPO, *TINY_RUN, "--out", str(run_dir)]) == 0
    return run_dir, stdout.getvalue()


@pytest.fixture
def run_copy(finished_run, tmp_path):
    return shutil.copytree(finished_run[0], tmp_path / "run")


def snapshot(run_dir):
    return {path.relative_to(run_dir): path.read_bytes() for path in sorted(run_dir.rglob("*")) if path.is_file()}


def refused(argv, capsys, *fragments):
    """main(argv) exits with 2 and one stderr line holding every fragment; returns that line."""
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error, error
    for fragment in fragments:
        assert fragment in error, error
    return error


def edit_config(run_dir, edit):
    path = run_dir / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


# ------------------------------------------------------------------ the report and config.json


def test_report_gives_ci_and_solved_count_and_lists_only_written_outputs(finished_run):
    run_dir, stdout = finished_run
    assert re.search(r"done: 256 env steps x 2 seeds; eval_return -?[\d.]+ \+- [\d.]+ \(\d/2 seeds >= 475\); "
                     r"episode_return -?[\d.]+ \+- [\d.]+", stdout), stdout
    last = read_metrics(run_dir)[-1]
    assert stats.summarize_seeds(last["eval_return_per_seed"], 475.0).describe() in stdout
    timing_line, outputs = stdout.strip().splitlines()[-2:]
    assert outputs == f"outputs in {run_dir}: config.json metrics.jsonl checkpoints/ learning_curve.png timing.json"
    timing = json.loads((run_dir / "timing.json").read_text())
    assert timing_line == describe_timing(timing)
    phases = ("init", "compile", "train", "eval", "checkpoint", "logging", "other")
    assert all(timing[name] >= 0 for name in phases) and timing["compile"] > 0 and timing["train"] > 0
    assert abs(sum(timing[name] for name in phases) - timing["total"]) < 0.01


def test_config_json_records_the_machine(finished_run):
    machine = json.loads((finished_run[0] / "config.json").read_text())["machine"]
    assert {"jax", "jaxlib", "flax", "optax"} <= machine["versions"].keys()
    assert machine["backend"] == "cpu" and machine["device_kind"] and machine["cpu_model"]


# ------------------------------------------------------------------ --resume with flags


@pytest.mark.parametrize(("flags", "fragments"), [
    (["--learning-rate", "0.001"], ["--learning-rate 0.001 (stored 0.0005)"]),
    (["--learning-rate", "0.001", "--num-envs", "8", "--no-progress"], ["--learning-rate 0.001", "--num-envs 8 (stored 4)"]),
    (["--overwrite"], ["--overwrite (it would delete the run being resumed)"]),
    (["--total-steps", "128"], ["--total-steps 128 (smaller than the stored 256"]),
    (["--devices", "2"], ["--devices 2"]),
    (["--env", "gymnax/Acrobot-v1"], ["--env gymnax/Acrobot-v1 (stored gymnax/CartPole-v1)"]),
    (["--seed", "3"], ["--seed 3 (stored 0)"]),
    (["--plasticity", "redo"], ["--plasticity 'redo' (stored 'none')"]),
    (["--out", "elsewhere"], ["--out elsewhere"]),
])
def test_resume_refuses_flags_that_contradict_the_stored_run(finished_run, flags, fragments, capsys):
    run_dir = finished_run[0]
    before = snapshot(run_dir)
    refused(["train", "ppo", "--resume", str(run_dir), *flags], capsys, f"cannot resume {run_dir} with", *fragments)
    assert snapshot(run_dir) == before


def test_resume_refuses_another_algorithm(finished_run, capsys):
    refused(["train", "dqn", "--resume", str(finished_run[0])], capsys, "it holds a ppo run",
            f"jaxrl train ppo --resume {finished_run[0]}")


def test_resume_extends_a_run_with_a_larger_budget(run_copy, capsys):
    """Equal flags are accepted; --total-steps 384 continues from the last checkpoint (256) and
    logs beyond the old end; the learner's total_steps (PPO's annealing horizon) stays stored."""
    old = read_metrics(run_copy)
    assert main(["train", "ppo", "--resume", str(run_copy), "--total-steps", "384", "--learning-rate", "0.0005",
                 "--num-envs", "4", "--no-tensorboard"]) == 0
    assert "extended from 256" in capsys.readouterr().out
    records = read_metrics(run_copy)
    assert records[: len(old)] == old
    assert [r["env_steps"] for r in records] == [64, 128, 192, 256, 320, 384]
    config = json.loads((run_copy / "config.json").read_text())
    assert config["run"]["total_steps"] == 384 and config["learner"]["total_steps"] == 256


def test_extending_a_run_whose_learning_rate_anneals_is_refused(run_copy, capsys):
    edit_config(run_copy, lambda config: config["learner"].update(anneal_lr=True))
    refused(["train", "ppo", "--resume", str(run_copy), "--total-steps", "512"], capsys,
            "anneals to 0 at the stored learner.total_steps=256")


# ------------------------------------------------------------------ checkpoints


def test_resume_without_a_committed_checkpoint_suggests_overwrite(run_copy, capsys):
    shutil.rmtree(run_copy / "checkpoints")
    unfinished = run_copy / "checkpoints" / "1.orbax-checkpoint-tmp"
    unfinished.mkdir(parents=True)
    refused(["train", "ppo", "--resume", str(run_copy)], capsys, "holds no checkpoint", "--overwrite",
            "1.orbax-checkpoint-tmp is left as it is")
    assert unfinished.is_dir()


def _truncate_state_files(checkpoint_dir):
    for path in (checkpoint_dir / "packed").rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes()[:5])


def test_resume_falls_back_to_the_newest_intact_checkpoint(run_copy, capfd):
    full = read_metrics(run_copy)
    _truncate_state_files(run_copy / "checkpoints" / "4")
    assert main(["train", "ppo", "--resume", str(run_copy)]) == 0
    out, err = capfd.readouterr()
    assert "checkpoint 4 could not be restored (" in out and "resuming from checkpoint 3, the newest intact one" in out
    assert "absl" not in err and "Traceback" not in err
    assert (run_copy / "unreadable_checkpoints" / "4" / "packed").is_dir()  # set aside, not deleted
    assert [r["env_steps"] for r in read_metrics(run_copy)] == [r["env_steps"] for r in full]
    assert read_metrics(run_copy)[:3] == full[:3]


def test_resume_with_no_intact_checkpoint_is_one_line(run_copy, capfd):
    for step in ("2", "3", "4"):
        for path in (run_copy / "checkpoints" / step / "packed").rglob("d/*"):
            path.unlink()  # TensorStore's errors carry a JSON spec of a kilobyte or more
    before = snapshot(run_copy)
    assert main(["train", "ppo", "--resume", str(run_copy)]) == 2
    out, err = capfd.readouterr()
    assert err.startswith("error: none of the checkpoints 2, 3, 4 in ") and err.count("\n") == 1, err
    assert len(err) < 600 and "tensorstore_spec" not in err and "absl" not in err + out
    assert snapshot(run_copy) == before


# ------------------------------------------------------------------ hand-edited config.json


def _drop(section, key):
    return lambda config: (config[section] if section else config).pop(key)


def _set(section, key, value):
    return lambda config: config[section].update({key: value})


@pytest.mark.parametrize(("edit", "message"), [
    (_set("learner", "bogus", 1), "invalid config.json learner.bogus=1: not a field of PPOConfig"),
    (_drop(None, "algo"), "invalid config.json algo: missing; expected one of dqn, ppo, sac, td3"),
    (_set("learner", "learning_rate", "abc"), "invalid config.json learner.learning_rate='abc': expected a number"),
    (_set("run", "num_seeds", 2.0), "invalid config.json run.num_seeds=2.0: expected an integer"),
    (_drop("learner", "learning_rate"), "invalid config.json learner.learning_rate: missing; expected a number"),
    (_set("learner", "hidden_sizes", [16, "x"]), "learner.hidden_sizes='x': expected an integer"),
    (_set("learner", "plasticity", {"method": "redo"}), "invalid config.json learner.plasticity.score: missing"),
    (_set("run", "num_seeds", 0), "invalid config.json run.num_seeds=0: expected an integer >= 1"),
    (lambda config: config.update(notes="x"), "invalid config.json key 'notes'"),
])
@pytest.mark.parametrize("command", ["resume", "eval"])
def test_hand_edited_config_json_is_refused_in_one_line(run_copy, edit, message, command, capsys):
    edit_config(run_copy, edit)
    argv = ["train", "ppo", "--resume", str(run_copy)] if command == "resume" else ["eval", str(run_copy)]
    before = snapshot(run_copy)
    refused(argv, capsys, message)
    assert snapshot(run_copy) == before


def test_config_json_from_before_fields_were_added_reads_back_with_their_defaults(run_copy, capsys):
    """Fields added after a run was written (validation.added_field) may be missing; no other may."""
    def drop_added(config):
        for key in ("early_stop", "horizon"):
            config["learner"].pop(key)
        for key in ("shrink_factor", "perturb_scale"):
            config["learner"]["plasticity"].pop(key)

    edit_config(run_copy, drop_added)
    assert main(["eval", str(run_copy)]) == 0
    assert main(["train", "ppo", "--resume", str(run_copy)]) == 0  # the same run: nothing to refuse
    assert "cannot resume" not in capsys.readouterr().err


def test_config_json_that_is_not_json_is_refused(run_copy, capsys):
    (run_copy / "config.json").write_text('{"algo": "ppo",')
    refused(["eval", str(run_copy)], capsys, "config.json: not JSON")


def test_eval_accepts_the_recorded_machine(finished_run, capsys):
    assert main(["eval", str(finished_run[0])]) == 0
    assert "ppo on gymnax/CartPole-v1 after 4 updates" in capsys.readouterr().out


# ------------------------------------------------------------------ flags accepted and ignored


SWEEP = ["sweep", "ppo", "--env", "gymnax/CartPole-v1", "--grid", "learning_rate=1e-3,2e-3"]


@pytest.mark.parametrize(("argv", "fragments"), [
    ([*SWEEP, "--devices", "2"], ["jaxrl sweep does not take --devices 2"]),
    ([*SWEEP, "--resume", "runs/x"], ["jaxrl sweep does not take --resume runs/x", "--overwrite"]),
    (["train", "ppo", "--churn-value-coefficient", "0.3"], ["invalid ppo.churn.value_coefficient=0.3: expected the default 0.1"]),
    (["train", "ppo", "--churn-policy-coefficient", "0.01"], ["invalid ppo.churn.policy_coefficient=0.01"]),
    (["train", "dqn", "--churn", "cchain", "--churn-value-coefficient", "0.3"], ["invalid dqn.churn.value_coefficient=0.3"]),
    (["train", "ppo", "--plasticity", "redo", "--grama-score", "kernel_grad"],
     ["invalid ppo.plasticity.score='kernel_grad'", "unless method='regrama'"]),
    (["train", "sac", "--env", "gymnax/Pendulum-v1", "--least.start-steps", "1000"],
     ["invalid sac.least.start_steps=1000: expected the default 5000 unless early_stop='least'"]),
    (["train", "td3", "--env", "gymnax/Pendulum-v1", "--least.patience", "3", "--least.noise-cap", "0.1"],
     ["td3.least.noise_cap=0.1", "td3.least.patience=3", "set by --least.", "--least.noise-cap"]),
    (["train", "sac", "--env", "gymnax/Pendulum-v1", "--churn", "cchain", "--churn-kappa", "0.1"],
     ["invalid sac.churn.kappa=0.1: expected the default 0.05", "fixed weights"]),
    (["train", "td3", "--env", "gymnax/Pendulum-v1", "--churn-value-coefficient", "0.3"],
     ["invalid td3.churn.value_coefficient=0.3", "unless method='cchain'"]),
    (["train", "dqn", "--churn-kappa", "0.1"], ["invalid dqn.churn.kappa=0.1: expected the default 0.01"]),
    (["train", "ppo", "--reset-period", "10"], ["invalid ppo.plasticity.period=10: expected the default 1000",
                                                 "method 'redo', 'regrama' or 'shrink-perturb'); set by --reset-period"]),
    (["train", "ppo", "--diagnostic-threshold", "0.2"], ["invalid ppo.plasticity.diagnostic_threshold=0.2"]),
    (["train", "sac", "--env", "gymnax/Pendulum-v1", "--horizon.min-fraction", "0.3"],
     ["invalid sac.horizon.min_fraction=0.3: expected the default 0.5 unless early_stop='fixed-horizon'"]),
    (["train", "ppo", "--horizon.start-steps", "100"], ["invalid ppo.horizon.start_steps=100"]),
    (["train", "ppo", "--early-stop", "fixed-horizon", "--horizon.min-fraction", "0"],
     ["invalid ppo.horizon.min_fraction=0.0: expected a fraction in (0, 1]"]),
    (["train", "dqn", "--plasticity", "redo", "--shrink-factor", "0.5"],
     ["invalid dqn.plasticity.shrink_factor=0.5: expected the default 0.8", "unless method='shrink-perturb'"]),
    (["train", "ppo", "--plasticity", "shrink-perturb", "--reset-threshold", "0.2"],
     ["invalid ppo.plasticity.threshold=0.2", "unless method is 'redo' or 'regrama'", "set by --reset-threshold"]),
    (["train", "ppo", "--plasticity", "shrink-perturb", "--diagnostic-threshold", "0.2"],
     ["invalid ppo.plasticity.diagnostic_threshold=0.2"]),
    (["train", "ppo", "--plasticity", "shrink-perturb", "--shrink-factor", "1.5"],
     ["invalid ppo.plasticity.shrink_factor=1.5: expected a float in [0, 1]"]),
    (["train", "ppo", "--state-dependent-std"], ["invalid ppo.state_dependent_std=True", "discrete action space"]),
    (["train", "ppo", "--env", "gymnax/Acrobot-v1", "--init-log-std", "-0.5"], ["invalid ppo.init_log_std=-0.5"]),
])
def test_flags_that_nothing_would_read_are_refused(argv, fragments, tmp_path, capsys):
    refused([*argv, "--out", str(tmp_path / "out")], capsys, *fragments)
    assert not (tmp_path / "out").exists()


def test_unread_checks_accept_defaults_and_the_settings_that_read_them():
    from jaxrl_suite import algorithms
    from jaxrl_suite.agents.ppo import make_ppo
    from jaxrl_suite.cli_args import refuse_unread_flags
    from jaxrl_suite.early_stop import FixedHorizonConfig, LeastConfig
    from jaxrl_suite.envs import make
    from jaxrl_suite.plasticity import ChurnConfig, PlasticityConfig

    for algo, env_id in [("ppo", "gymnax/CartPole-v1"), ("ppo", "gymnax/Pendulum-v1"), ("ppo", "brax/ant"),
                         ("dqn", "gymnax/CartPole-v1"), ("sac", "gymnax/Pendulum-v1"), ("sac", "dmc/CartpoleBalance"),
                         ("td3", "gymnax/Pendulum-v1")]:
        defaults = algorithms.default_config(algo, env_id).validate()
        refuse_unread_flags(defaults, defaults)
    sac = algorithms.default_config("sac", "gymnax/Pendulum-v1")
    refuse_unread_flags(dataclasses.replace(sac, early_stop="least", least=LeastConfig(start_steps=10)), sac)
    dataclasses.replace(sac, churn=ChurnConfig(method="cchain", value_coefficient=0.3)).validate()  # CHAIN reads it
    PlasticityConfig(method="regrama", score="kernel_grad").validate()
    PlasticityConfig(method="redo", period=10, threshold=0.2, max_reset_fraction=0.5).validate()
    PlasticityConfig(log_unit_activity=True, diagnostic_threshold=0.2).validate()
    PlasticityConfig(method="shrink-perturb", period=10, shrink_factor=0.5, perturb_scale=0.01).validate()
    dataclasses.replace(sac, early_stop="fixed-horizon", horizon=FixedHorizonConfig(0.3, 10)).validate()
    ChurnConfig(method="cchain", kappa=0.1, window=5).validate(chain_weights=False)  # C-CHAIN adapts
    ppo = dataclasses.replace(algorithms.default_config("ppo", "gymnax/Pendulum-v1"), state_dependent_std=True,
                              init_log_std=-1.0)
    make_ppo(ppo, make("gymnax/Pendulum-v1"))  # continuous actions read both


# ------------------------------------------------------------------ jaxrl plot


def test_plot_refuses_missing_directories_files_and_metrics(finished_run, tmp_path, capsys):
    refused(["plot", "/nonexistent", "--output", str(tmp_path / "a.png")], capsys, "no such run directory: /nonexistent")
    refused(["plot", str(tmp_path), "--output", str(tmp_path / "a.png")], capsys, "has no metrics.jsonl")
    refused(["plot", str(finished_run[0]), "--metric", "bogus", "--output", str(tmp_path / "a.png")], capsys,
            "metric 'bogus' is not in metrics.jsonl", "episode_return", "eval_return")
    assert not (tmp_path / "a.png").exists()


def test_plot_draws_the_mean_and_95_ci_over_seeds(finished_run, tmp_path, monkeypatch):
    drawn = {}
    save = plots.save_figure

    def recording_save(figure, output):
        axis = figure.axes[0]
        drawn["labels"] = [text.get_text() for text in axis.get_legend().get_texts()]
        drawn["bands"] = len(axis.collections)
        return save(figure, output)

    monkeypatch.setattr(plots, "save_figure", recording_save)
    assert main(["plot", str(finished_run[0]), "--output", str(tmp_path / "curves.png")]) == 0
    assert drawn == {"labels": ["run: mean and 95% CI over 2 seeds"], "bands": 1}
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_mean_and_ci_matches_stats_row_by_row():
    values = np.array([[1.0, 2.0, 4.0], [3.0, np.nan, 5.0], [7.0, np.nan, np.nan], [np.nan] * 3])
    mean, half = plots.mean_and_ci(values)
    for row, row_mean, row_half in zip(values[:3], mean[:3], half[:3], strict=True):
        expected = stats.mean_ci(row[np.isfinite(row)])
        np.testing.assert_allclose((row_mean, row_half), expected, rtol=1e-12)
    assert np.isnan(mean[3]) and half[3] == 0.0
