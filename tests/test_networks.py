"""Network building blocks: trunk shapes, residual/LayerNorm options, conv torso, shared vs
separate trunks, policy heads and the raw-to-env action map."""

import chex
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.envs.spaces import Box, Discrete
from jaxrl_suite.networks import (
    MLP,
    ActorCritic,
    ConvTorso,
    GaussianHead,
    activation_by_name,
    env_action,
    squashed_gaussian_entropy,
)

KEY = jax.random.PRNGKey(0)


def _count(params) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(params))


def test_mlp_shapes_and_options():
    x = jnp.ones((3, 5, 4))
    plain = MLP((8, 8))
    params = plain.init(KEY, x)
    chex.assert_shape(plain.apply(params, x), (3, 5, 8))
    normed = MLP((8, 8), layer_norm=True)
    assert "LayerNorm_0" in normed.init(KEY, x)["params"]
    # Identity for an empty trunk.
    np.testing.assert_array_equal(MLP(()).apply(MLP(()).init(KEY, x), x), x)


def test_residual_adds_input_only_between_equal_widths():
    x = jax.random.normal(KEY, (2, 4))  # 4 -> 8 has no skip; 8 -> 8 does
    residual, plain = MLP((8, 8), residual=True), MLP((8, 8))
    params = plain.init(KEY, x)  # same parameter tree for both
    layers = params["params"]
    first = jnp.tanh(x @ layers["Dense_0"]["kernel"] + layers["Dense_0"]["bias"])
    second = jnp.tanh(first @ layers["Dense_1"]["kernel"] + layers["Dense_1"]["bias"])
    np.testing.assert_allclose(plain.apply(params, x), second, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(residual.apply(params, x), first + second, rtol=1e-5, atol=1e-6)


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="activation='swoosh'"):
        activation_by_name("swoosh")


def test_conv_torso_keeps_batch_dims():
    image = jnp.ones((2, 3, 10, 10, 4), bool)
    torso = ConvTorso((16,))
    out = torso.apply(torso.init(KEY, image), image)
    chex.assert_shape(out, (2, 3, 8 * 8 * 16))


def test_actor_critic_discrete_shared_and_separate():
    obs = jnp.ones((5, 4))
    separate = ActorCritic(Discrete(3), hidden_sizes=(16, 16))
    shared = ActorCritic(Discrete(3), hidden_sizes=(16, 16), shared_trunk=True)
    separate_params, shared_params = separate.init(KEY, obs), shared.init(KEY, obs)
    trunk = 4 * 16 + 16 + 16 * 16 + 16
    heads = 16 * 3 + 3 + 16 + 1
    assert _count(separate_params) == 2 * trunk + heads
    assert _count(shared_params) == trunk + heads
    policy, value = separate.apply(separate_params, obs)
    assert isinstance(policy, distrax.Categorical)
    chex.assert_shape(value, (5,))
    chex.assert_shape(policy.sample(seed=KEY), (5,))
    # Small policy-head init: the first policy is close to uniform.
    np.testing.assert_allclose(policy.probs, 1.0 / 3.0, atol=0.05)
    np.testing.assert_allclose(separate.apply(separate_params, obs, method=ActorCritic.value), value)


def test_actor_critic_separate_critic_sizes_and_conv():
    obs = jnp.zeros((2, 10, 10, 4))
    net = ActorCritic(Discrete(6), hidden_sizes=(32,), critic_hidden_sizes=(8, 8), conv_channels=(16,),
                      observation_ndim=3)
    params = net.init(KEY, obs)["params"]
    assert params["critic_trunk"]["MLP_0"]["Dense_1"]["kernel"].shape == (8, 8)
    assert params["actor_trunk"]["ConvTorso_0"]["Conv_0"]["kernel"].shape == (3, 3, 4, 16)
    policy, value = net.apply({"params": params}, obs)
    chex.assert_shape(policy.logits, (2, 6))
    chex.assert_shape(value, (2,))


@pytest.mark.parametrize("state_dependent_std", [False, True])
def test_gaussian_head_std_modes(state_dependent_std):
    features = jax.random.normal(KEY, (4, 8))
    head = GaussianHead(action_dim=2, state_dependent_std=state_dependent_std, init_log_std=-0.5)
    params = head.init(KEY, features)
    dist = head.apply(params, features)
    chex.assert_shape(dist.sample(seed=KEY), (4, 2))
    log_std = jnp.log(dist.stddev())
    chex.assert_shape(log_std, (4, 2))
    if state_dependent_std:  # a linear output with small init around init_log_std, varying by state
        assert isinstance(params["params"]["log_std"], dict)
        np.testing.assert_allclose(log_std, -0.5, atol=0.1)
        assert float(jnp.abs(log_std[0] - log_std[1]).max()) > 0
    else:  # one learned vector shared by all states
        chex.assert_shape(params["params"]["log_std"], (2,))
        np.testing.assert_allclose(log_std, -0.5, rtol=1e-6)


def test_squashed_entropy_by_hand_and_by_sampling():
    # A narrow Gaussian at u = m: H(tanh u) -> 0.5 log(2 pi e s^2) + log(1 - tanh(m)^2).
    narrow = distrax.MultivariateNormalDiag(jnp.array([[1.5, 0.0]]), jnp.array([[1e-3, 1e-3]]))
    by_hand = 2 * (0.5 * np.log(2 * np.pi * np.e * 1e-6)) + np.log(1 - np.tanh(1.5) ** 2)
    chex.assert_shape(squashed_gaussian_entropy(narrow), (1,))
    np.testing.assert_allclose(squashed_gaussian_entropy(narrow), [by_hand], rtol=1e-5)
    # Wide and shifted Gaussians: the quadrature matches a 400k-sample Monte Carlo estimate to 1%
    # (the 32-point rule's own error grows with the std: about 0.5% at std 5).
    loc, scale = jnp.array([[0.0, -2.0], [0.3, 1.0]]), jnp.array([[5.0, 3.0], [0.7, 0.2]])
    policy = distrax.MultivariateNormalDiag(loc, scale)
    pre_tanh = np.asarray(loc, np.float64) + np.asarray(scale, np.float64) * np.random.default_rng(0).normal(
        size=(400_000, 2, 2))
    log_det = np.sum(-2.0 * np.log(np.cosh(pre_tanh)), axis=-1)  # tanh'(u) = 1 / cosh(u)^2
    np.testing.assert_allclose(squashed_gaussian_entropy(policy), policy.entropy() + log_det.mean(0),
                               rtol=1e-2)
    # Unlike the raw Gaussian's, the squashed entropy falls once the std saturates the tanh.
    entropy_at = lambda std: squashed_gaussian_entropy(  # noqa: E731
        distrax.MultivariateNormalDiag(jnp.zeros((1,)), jnp.full((1,), std)))
    assert entropy_at(5.0) < entropy_at(1.0)


def test_env_action_clip_tanh_and_discrete():
    box = Box((2,), -1.0, 1.0)
    raw = jnp.array([[-3.0, 0.5], [0.0, 2.0]])
    np.testing.assert_allclose(env_action(raw, box, "clip"), [[-1.0, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(env_action(raw, box, "tanh"), jnp.tanh(raw), rtol=1e-6)
    np.testing.assert_allclose(env_action(raw, box, "none"), raw)
    wide = Box((1,), -2.0, 4.0)
    np.testing.assert_allclose(env_action(jnp.array([0.0]), wide, "tanh"), [1.0])
    actions = jnp.array([0, 2])
    np.testing.assert_array_equal(env_action(actions, Discrete(3), "tanh"), actions)
    with pytest.raises(ValueError, match="squash='sigmoid'"):
        env_action(raw, box, "sigmoid")


def test_trunk_restores_images_from_flat_observations():
    image = jax.random.uniform(KEY, (2, 10, 10, 4))
    on_images = ActorCritic(Discrete(3), hidden_sizes=(8,), conv_channels=(4,), observation_ndim=3)
    on_flat = ActorCritic(Discrete(3), hidden_sizes=(8,), conv_channels=(4,), observation_ndim=1,
                          image_shape=(10, 10, -1))
    params = on_images.init(KEY, image)
    chex.assert_trees_all_equal_shapes(params, on_flat.init(KEY, image.reshape(2, 400)))
    policy_image, value_image = on_images.apply(params, image)
    policy_flat, value_flat = on_flat.apply(params, image.reshape(2, 400))
    np.testing.assert_allclose(policy_flat.logits, policy_image.logits, rtol=1e-6)
    np.testing.assert_allclose(value_flat, value_image, rtol=1e-6)


@pytest.mark.parametrize("shape, scale", [((4, 64), 1.4), ((64, 3), 0.01), ((3, 3, 4, 16), 1.41), ((1, 7), 1.0)])
def test_orthogonal_init_equals_flax_alone_and_vmapped(shape, scale):
    """Our orthogonal initializer gives flax's values bit for bit, alone and under vmap, where on
    CPU its QR runs one matrix at a time (a while loop) instead of as one batched LAPACK call."""
    import flax.linen as nn

    from jaxrl_suite.networks.initializers import orthogonal

    keys = jax.random.split(KEY, 3)
    ours, flax_init = orthogonal(scale), nn.initializers.orthogonal(scale)
    np.testing.assert_array_equal(ours(keys[0], shape), flax_init(keys[0], shape))
    vmapped = jax.jit(jax.vmap(lambda key: ours(key, shape)))
    np.testing.assert_array_equal(vmapped(keys), jnp.stack([flax_init(key, shape) for key in keys]))
    assert "while" in vmapped.lower(keys).as_text()
