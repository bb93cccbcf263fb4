"""experiments/seed_robustness.py --seeds: a screen on chosen seeds trains exactly those seeds, is
written to screens/ (never into the robustness table), and bad seed lists get one parser line."""

import json
import sys

import pytest

from tests.conftest import load_experiment


@pytest.fixture(scope="module")
def study():
    yield from load_experiment("seed_robustness")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "3,x"], "--seeds='3,x': expected distinct integers >= 0"),
        (["--seeds", "3,3"], "--seeds='3,3': expected distinct integers >= 0"),
        (["--seeds", "-1"], "--seeds='-1': expected distinct integers >= 0"),
        (["--seeds", "3", "--num-seeds", "4"], "--seeds lists the seeds itself: drop --num-seeds"),
        (["--report", "--seeds", "3"], "--report only regenerates the summary"),
    ],
)
def test_bad_seed_lists_are_refused_in_one_line(study, argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["seed_robustness.py", "--results", str(tmp_path), *argv])
    with pytest.raises(SystemExit) as exit_info:
        study.main()
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_screen_trains_the_listed_seeds_and_stays_out_of_the_summary(study, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAXRL_COMPILATION_CACHE", "off")
    results, out = tmp_path / "results", tmp_path / "runs"
    # one PPO update (4 envs x 128 steps) of seeds 5 and 2, in that order
    study.main(["--tasks", "ppo-gymnax-CartPole-v1", "--seeds", "5,2", "--total-steps", "512", "--tag", "tiny",
                "--results", str(results), "--out", str(out)])
    screen = json.loads((results / "screens" / "ppo-gymnax-CartPole-v1-tiny-seeds5.2.json").read_text())
    assert screen["seeds"] == [5, 2] and screen["num_seeds"] == 2
    assert len(screen["eval_return_per_seed"]) == 2
    assert screen["env_steps_trained"] == 512
    assert not (results / "summary.md").exists() and not list(results.glob("*.json"))
    config = json.loads((out / "ppo-gymnax-CartPole-v1-tiny-seeds5.2" / "config.json").read_text())
    assert config["run"]["num_seeds"] == 2
    assert "per seed 5: " in capsys.readouterr().out
