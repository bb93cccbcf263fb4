"""Fast checks of the LEAST study's presets and command line: no training.

The issue asks for SAC/TD3 with and without LEAST over >= 5 seeds on named CPU and GPU envs.
"""

import argparse

import pytest

from tests.conftest import load_experiment


@pytest.fixture(scope="module")
def study():
    yield from load_experiment("least")


def _args(**overrides):
    values = dict(envs=None, total_steps=None, least=[], least_start=None)
    return argparse.Namespace(**{**values, **overrides})


def test_presets_cover_the_requested_envs_with_five_seeds(study):
    cpu, gpu = study.PRESETS["cpu"], study.PRESETS["gpu"]
    assert list(cpu.budgets) == ["dmc/CartpoleSwingup", "brax/inverted_pendulum", "brax/hopper"]
    assert list(gpu.budgets) == ["dmc/CheetahRun", "dmc/HopperHop", "dmc/WalkerWalk", "brax/ant", "brax/humanoid"]
    assert cpu.num_seeds >= 5 and gpu.num_seeds >= 5
    assert {algo for algo, _ in study.VARIANTS} == {"sac", "td3"}
    assert set(study.VARIANTS) == {(algo, mode) for algo in ("sac", "td3") for mode in ("none", "least", "fixed-horizon")}
    tasks = study.select_tasks(cpu, _args())
    assert [task.least.start_steps for task in tasks] == [6_000, 3_000, 6_000]  # 15% of each budget
    assert all(task.least.window_max <= 40 for task in tasks)
    assert study.select_tasks(gpu, _args())[0].least.start_steps == 100_000


def test_command_line_overrides(study):
    cpu = study.PRESETS["cpu"]
    (task,) = study.select_tasks(cpu, _args(envs="gymnax/Pendulum-v1", total_steps=10_000,
                                            least=["patience=5", "omega_max=inf"], least_start=1_000))
    assert task.env_id == "gymnax/Pendulum-v1" and task.total_steps == 10_000
    assert task.least.patience == 5 and task.least.omega_max == float("inf") and task.least.start_steps == 1_000
    # The learner's noise cap (TD3 0.3) applies unless the command line sets one.
    assert study.variant_config(task, "td3", "least").least.noise_cap == 0.3
    (capped,) = study.select_tasks(cpu, _args(envs="gymnax/Pendulum-v1", least=["noise_cap=0"]))
    config = study.variant_config(capped, "td3", "least")
    assert config.least.noise_cap == 0.0 and config.early_stop == "least" and config.num_envs == 8
    control = study.variant_config(capped, "sac", "fixed-horizon")
    assert control.early_stop == "fixed-horizon" and control.horizon.start_steps == capped.least.start_steps
    for mode in ("none", "least", "fixed-horizon"):  # each variant's config is valid (no ignored field)
        study.variant_config(capped, "td3", mode).validate()
    with pytest.raises(SystemExit, match="FIELD one of"):
        study.least_overrides(["patiense=5"])
    with pytest.raises(SystemExit, match="not env ids"):
        study.select_tasks(cpu, _args(envs="dmc/NoSuchTask"))
    with pytest.raises(ValueError, match="least.patience=0"):
        study.select_tasks(cpu, _args(least=["patience=0"]))


def test_estimated_steps_saved_uses_the_unstopped_episodes_length(study):
    # After the warm-up (env step 100): 4 episodes ended, 1 stopped after 10 steps, the other 3
    # lasted 30 on average; the record before the warm-up does not count.
    records = [{"env_steps": 100, "least_stopped_count": 0.0, "completed_count": 9.0, "completed_length_sum": 9.0},
               {"env_steps": 200, "least_stopped_count": 1.0, "completed_count": 2.0, "completed_length_sum": 40.0,
                "least_stopped_length_sum": 10.0},
               {"env_steps": 300, "completed_count": 2.0, "completed_length_sum": 60.0}]
    assert study.estimated_steps_saved(records, start_steps=100) == 20.0
    shorter = [{**records[1], "completed_length_sum": 15.0}]  # the unstopped one lasted 5 steps
    assert study.estimated_steps_saved(shorter, start_steps=100) == 0.0  # never negative
    assert study.estimated_steps_saved(records[:1], start_steps=0) == 0.0  # nothing stopped
    # The fixed-horizon control's counts are read under its own names.
    renamed = [{name.replace("least_", "fixed_horizon_"): value for name, value in record.items()} for record in records]
    assert study.estimated_steps_saved(renamed, start_steps=100, prefix="fixed_horizon_") == 20.0
    assert study.estimated_steps_saved(renamed, start_steps=100) == 0.0


def test_field_overrides_types_values_like_the_defaults_and_names_valid_fields(study):
    from jaxrl_suite.agents.sac import SACConfig

    overrides = study.field_overrides(["initial_temperature=0.001", "utd_ratio=3", "critic_layer_norm=false"],
                                      SACConfig, "--learner")
    assert overrides == {"initial_temperature": 0.001, "utd_ratio": 3, "critic_layer_norm": False}
    assert type(overrides["utd_ratio"]) is int
    # Nested or tuple-valued fields are not settable this way, and the message lists what is.
    with pytest.raises(SystemExit, match="--learner 'least=1'.*initial_temperature"):
        study.field_overrides(["least=1"], SACConfig, "--learner")
    with pytest.raises(SystemExit, match="--learner 'hidden_sizes=64'"):
        study.field_overrides(["hidden_sizes=64"], SACConfig, "--learner")
    with pytest.raises(SystemExit, match="--learner 'critic_layer_norm=maybe': expected true or false"):
        study.field_overrides(["critic_layer_norm=maybe"], SACConfig, "--learner")
    with pytest.raises(SystemExit, match="--learner 'utd_ratio=two'"):
        study.field_overrides(["utd_ratio=two"], SACConfig, "--learner")
