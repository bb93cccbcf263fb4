"""The plasticity studies' presets, the gpu ones included, build valid learners: every config
validates, replay buffers fit, chunks divide the runs. Nothing is compiled or trained here."""


import pytest

from jaxrl_suite.plasticity import ChurnConfig
from tests.conftest import load_experiment


@pytest.fixture(scope="module")
def regrama():
    yield from load_experiment("regrama")


@pytest.fixture(scope="module")
def cchain():
    yield from load_experiment("cchain_continual")


@pytest.mark.parametrize("preset_name", ["cpu", "gpu"])
def test_regrama_preset_variants_build(regrama, preset_name):
    preset = regrama.PRESETS[preset_name]
    assert preset.num_seeds >= 5  # the issue asks for >= 5 seeds per variant
    for study in preset.studies:
        for method in regrama.METHODS:
            learner, run = regrama.build_variant(study, method, preset.num_seeds)
            assert learner.config.plasticity.method == method
            if method != "none":  # the baseline keeps the defaults of the reset fields it does not read
                assert learner.config.plasticity.period == study.reset_period
            assert run.num_seeds == preset.num_seeds and run.total_steps == study.total_steps
            # even chunks: log_every divides the run, evaluations land on chunk boundaries
            assert run.log_every % learner.env_steps_per_update == 0
            assert (study.total_steps // learner.env_steps_per_update * learner.env_steps_per_update) % run.log_every == 0
            assert run.eval_every % run.log_every == 0


@pytest.mark.parametrize("preset_name", ["cpu", "gpu"])
def test_cchain_preset_learners_build(cchain, preset_name):
    preset = cchain.PRESETS[preset_name]
    for churn in (ChurnConfig(), preset.churn):  # the study's two variants, ppo and ppo+cchain
        learner = cchain.build_learner(preset, churn)
        assert learner.config.churn.method == churn.method
        assert preset.steps_per_task % (learner.config.batch_size * preset.chunks_per_task) == 0
