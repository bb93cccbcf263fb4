"""Fast checks of the PPO data-scaling study: diagnostic helpers on tiny inputs and preset consistency.

Known answers (rank of a diagonal matrix, ESS of equal weights), grid invariants, and a tiny
CartPole setting that is interrupted, resumed and then reused.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import load_experiment


@pytest.fixture(scope="module")
def study():
    yield from load_experiment("ppo_data_scaling")


def test_effective_rank_of_diagonal_features(study):
    assert int(study.effective_rank(jnp.diag(jnp.ones(6)))) == 6
    assert int(study.effective_rank(jnp.diag(jnp.array([1.0, 1.0, 0.0, 0.0])))) == 2


def test_normalized_ess_known_values(study):
    np.testing.assert_allclose(study.normalized_ess(jnp.zeros(8)), 1.0, rtol=1e-6)
    one_hot = jnp.log(jnp.array([1.0, 1e-30, 1e-30, 1e-30]))
    np.testing.assert_allclose(study.normalized_ess(one_hot), 0.25, rtol=1e-5)
    two_equal = jnp.log(jnp.array([2.0, 2.0, 1e-30, 1e-30]))
    np.testing.assert_allclose(study.normalized_ess(two_equal), 0.5, rtol=1e-5)


def test_weight_norm_and_kurtosis(study):
    params = {"a": jnp.array([3.0]), "b": {"c": jnp.array([4.0])}}
    np.testing.assert_allclose(study.weight_norm(params), 5.0, rtol=1e-6)
    # Symmetric two-point distribution: kurtosis exactly 1; Gaussian samples: about 3.
    np.testing.assert_allclose(study.gradient_kurtosis({"g": jnp.array([1.0, -1.0, 1.0, -1.0])}), 1.0, rtol=1e-6)
    gaussian = jax.random.normal(jax.random.PRNGKey(0), (200_000,))
    assert abs(float(study.gradient_kurtosis({"g": gaussian})) - 3.0) < 0.1


def test_diagnostics_on_tiny_ppo_state(study):
    env_id = "gymnax/CartPole-v1"
    setting = study.Setting(num_envs=4, rollout_length=8)
    learner = study.make_ppo(study.ppo_config(env_id, setting, total_steps=64), study.make(env_id))
    state = jax.vmap(learner.init)(jax.random.split(jax.random.PRNGKey(0), 2))
    values = study.diagnose_seeds(learner, state, probe_size=16, seed=0)
    assert set(values) == set(study.DIAGNOSTICS)
    for name, per_seed in values.items():
        assert len(per_seed) == 2 and np.all(np.isfinite(per_seed)), name
    assert all(0.0 < v <= 1.0 for v in values["ess"])
    assert all(0.0 <= v <= 1.0 for v in values["dormant_ratio"])
    assert all(1.0 <= v <= 64.0 for v in values["feature_rank"])


@pytest.mark.parametrize("preset_name", ["cpu", "gpu", "smoke"])
def test_presets_are_consistent(study, preset_name):
    preset = study.PRESETS[preset_name]
    groups = preset.groups
    assert len({s.batch_size for s in groups["fixed_batch"]}) == 1
    assert len({s.num_envs for s in groups["fixed_batch"]}) == len(groups["fixed_batch"])
    assert len({s.rollout_length for s in groups["num_envs"]}) == 1
    assert {s.epoch_multiplier for s in groups["epochs"]} == {1, 2, 4}
    assert {s.shared_trunk for s in groups["trunk"]} == {False, True}
    for env_id in preset.env_ids:
        for setting in study.unique_settings(groups):
            config = study.ppo_config(env_id, setting, preset.total_steps)
            assert config.batch_size == setting.batch_size
            assert preset.total_steps >= config.batch_size, (env_id, setting.name)


def test_study_resumes_interrupted_settings_and_reuses_finished_ones(study, tmp_path, monkeypatch):
    """An interrupted setting continues from its checkpoint, a finished one is not retrained,
    and a directory holding another configuration is refused instead of overwritten."""
    from jaxrl_suite.runner import RunDirectoryError, loop, read_metrics

    setting = study.Setting(4, 8)
    preset = study.Preset(("gymnax/CartPole-v1",), total_steps=128, num_seeds=1, groups={"axis": [setting]},
                          probe_size=8, log_points=4)
    real_train, calls = loop.train, []

    def interrupted_train(*args, **kwargs):
        calls.append(kwargs)
        real_train(*args, **kwargs, max_chunks=2)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train", interrupted_train)
    with pytest.raises(KeyboardInterrupt):
        study.run_setting("gymnax/CartPole-v1", setting, preset, tmp_path, seed=0)
    run_dir = tmp_path / "gymnax_CartPole-v1" / setting.name
    assert [r["env_steps"] for r in read_metrics(run_dir)] == [32, 64]

    def recording_train(*args, **kwargs):
        calls.append(kwargs)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(loop, "train", recording_train)
    record = study.run_setting("gymnax/CartPole-v1", setting, preset, tmp_path, seed=0)
    assert calls[-1]["resume"] and not calls[-1]["overwrite"]
    assert [r["env_steps"] for r in read_metrics(run_dir)] == [32, 64, 96, 128]
    assert record["env_steps"] == 128

    assert study.run_setting("gymnax/CartPole-v1", setting, preset, tmp_path, seed=0) == record
    assert len(calls) == 2  # the finished setting was reused, not retrained

    longer = study.Preset(preset.env_ids, total_steps=160, num_seeds=1, groups=preset.groups, probe_size=8,
                          log_points=4)
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        study.run_setting("gymnax/CartPole-v1", setting, longer, tmp_path, seed=0)
    assert [r["env_steps"] for r in read_metrics(run_dir)] == [32, 64, 96, 128]
