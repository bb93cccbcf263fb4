"""Neuron scores, resets and diagnostics of jaxrl_suite.plasticity, checked on hand-made networks.

The 3-neuron case is computed by hand in the comments; resets are checked entry by entry.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl_suite.envs.spaces import Discrete
from jaxrl_suite.networks import MLP, ActorCritic
from jaxrl_suite.plasticity import (
    PlasticityConfig,
    UnitPlasticity,
    activation_grad_scores,
    apply_with_capture,
    effective_rank,
    find_unit_layout,
    gradient_kurtosis,
    kernel_grad_scores,
    ntk_gram,
    redo_scores,
    reset_units,
    select_units,
    weight_norm,
    zero_optimizer_state,
    zero_perturbations,
)


class ThreeUnitNet(nn.Module):
    """x [B, 2] -> Dense(3) -> relu -> Dense(1) -> [B]."""

    @nn.compact
    def __call__(self, x):
        hidden = nn.relu(nn.Dense(3)(x))
        return nn.Dense(1)(hidden)[..., 0]


INPUTS = jnp.array([[1.0, 2.0], [-1.0, 1.0]])
HAND_PARAMS = {"params": {
    "Dense_0": {"kernel": jnp.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]), "bias": jnp.zeros(3)},
    "Dense_1": {"kernel": jnp.array([[1.0], [2.0], [3.0]]), "bias": jnp.zeros(1)},
}}


def _three_unit_scores():
    net = ThreeUnitNet()
    layout = find_unit_layout(net.apply, HAND_PARAMS, INPUTS)
    perturbations = zero_perturbations(layout, net.apply, HAND_PARAMS, INPUTS)

    def loss(variables, perturbations):
        output, capture = apply_with_capture(layout, net.apply, variables, perturbations, INPUTS)
        return output.mean(), capture

    (_, capture), (param_grads, perturbation_grads) = jax.value_and_grad(loss, (0, 1), has_aux=True)(
        HAND_PARAMS, perturbations
    )
    return layout, capture, param_grads, perturbation_grads


def test_three_unit_layout():
    layout, *_ = _three_unit_scores()
    hidden, output = layout.layers
    assert hidden.path == ("Dense_0",) and not hidden.is_output and hidden.num_units == 3
    assert hidden.private_consumers == (("Dense_1",),) and hidden.function_preserving_reset
    assert output.path == ("Dense_1",) and output.is_output
    assert layout.hidden == (hidden,)


def test_redo_score_by_hand():
    # z = x W: [[1, 1, -2], [-1, 2, -1]]; h = relu(z) = [[1, 1, 0], [0, 2, 0]]
    # E|h| = [0.5, 1.5, 0], layer mean 2/3 -> scores [0.75, 2.25, 0]
    _, capture, _, _ = _three_unit_scores()
    np.testing.assert_allclose(capture.activity["Dense_0"], [0.5, 1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(redo_scores(capture)["Dense_0"], [0.75, 2.25, 0.0], rtol=1e-6)


def test_grama_activation_grad_score_by_hand():
    # L = mean_x y; dL/dz_i(x) = v_i / 2 * [z_i > 0], v = [1, 2, 3]
    # sample 1: [0.5, 1, 0]; sample 2: [0, 1, 0]; E|.| = [0.25, 1, 0], mean 5/12 -> [0.6, 2.4, 0]
    layout, _, _, perturbation_grads = _three_unit_scores()
    np.testing.assert_allclose(perturbation_grads["Dense_0"][0], [[0.5, 1.0, 0.0], [0.0, 1.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(activation_grad_scores(layout, perturbation_grads)["Dense_0"], [0.6, 2.4, 0.0], rtol=1e-6)


def test_grama_kernel_grad_score_by_hand():
    # dL/dW[j, i] = sum_x x_j dL/dz_i(x): unit 0 [0.5, 1] -> 0.75; unit 1 [1-1, 2+1] -> 1.5;
    # unit 2 [0, 0] -> 0; layer mean 0.75 -> [1, 2, 0]
    layout, _, param_grads, _ = _three_unit_scores()
    np.testing.assert_allclose(kernel_grad_scores(layout, param_grads)["Dense_0"], [1.0, 2.0, 0.0], rtol=1e-6)


def test_select_units_threshold_and_cap():
    scores = {"layer": jnp.array([0.0, 0.5, 0.05, 2.0, 0.01, 0.0, 3.0, 1.0, 1.0, 1.0])}
    np.testing.assert_array_equal(select_units(scores, 0.1, 1.0)["layer"], [1, 0, 1, 0, 1, 1, 0, 0, 0, 0])
    # cap 20% of 10 units = 2: the two lowest scores (ties by index)
    np.testing.assert_array_equal(select_units(scores, 0.1, 0.2)["layer"], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0])


def test_layout_of_layer_norm_residual_and_conv_networks():
    obs = jax.ShapeDtypeStruct((2, 8), jnp.float32)
    layer_norm_net = ActorCritic(Discrete(3), hidden_sizes=(8, 8), layer_norm=True, shared_trunk=True)
    variables = jax.eval_shape(layer_norm_net.init, jax.random.PRNGKey(0), obs)
    first, last = find_unit_layout(layer_norm_net.apply, variables, obs).hidden
    assert first.layer_norm == ("trunk", "MLP_0", "LayerNorm_0")
    assert last.private_consumers == (("policy_head", "logits"), ("value_head", "value"))

    residual_net = MLP((8, 8), residual=True)
    variables = jax.eval_shape(residual_net.init, jax.random.PRNGKey(0), obs)
    layout = find_unit_layout(residual_net.apply, variables, obs)
    assert layout.hidden == ()  # both layers' units reach the output through the residual stream

    images = jax.ShapeDtypeStruct((2, 5, 5, 3), jnp.float32)
    conv_net = ActorCritic(Discrete(3), hidden_sizes=(16,), conv_channels=(4,), observation_ndim=3, shared_trunk=True)
    variables = jax.eval_shape(conv_net.init, jax.random.PRNGKey(0), images)
    conv, dense = find_unit_layout(conv_net.apply, variables, images).hidden
    assert conv.num_units == 4 and conv.private_consumers == (("trunk", "MLP_0", "Dense_0"),)
    assert dense.num_units == 16 and dense.function_preserving_reset


def _trained_mlp(layer_norm: bool):
    net = MLP((5, 5), activation="relu", layer_norm=layer_norm)
    head = nn.Sequential([net, nn.Dense(2)])
    obs = jax.random.normal(jax.random.PRNGKey(0), (16, 4))
    variables = head.init(jax.random.PRNGKey(1), obs)
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(variables)

    @jax.jit
    def train_step(variables, opt_state):
        grads = jax.grad(lambda v: jnp.square(head.apply(v, obs)).sum())(variables)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(variables, updates), opt_state

    for _ in range(3):  # non-zero Adam moments everywhere
        variables, opt_state = train_step(variables, opt_state)
    return head, obs, variables, optimizer, opt_state


@pytest.mark.parametrize("layer_norm", [False, True])
def test_reset_touches_only_selected_units(layer_norm):
    head, obs, variables, optimizer, opt_state = _trained_mlp(layer_norm)
    layout = find_unit_layout(head.apply, variables, obs)
    first, second = layout.hidden
    fresh = head.init(jax.random.PRNGKey(7), obs)
    selected = jnp.array([False, True, False, True, False])
    masks = {first.key: selected, second.key: jnp.zeros(5, bool)}
    new_variables, touched = jax.jit(reset_units, static_argnums=0)(layout, variables, fresh, masks)
    new_opt_state = jax.jit(lambda state, touched: zero_optimizer_state(optimizer, state, touched))(opt_state, touched)

    old, new, drawn = variables["params"]["layers_0"], new_variables["params"]["layers_0"], fresh["params"]["layers_0"]
    kept = ~selected
    np.testing.assert_array_equal(new["Dense_0"]["kernel"][:, selected], drawn["Dense_0"]["kernel"][:, selected])
    np.testing.assert_array_equal(new["Dense_0"]["kernel"][:, kept], old["Dense_0"]["kernel"][:, kept])
    np.testing.assert_array_equal(new["Dense_0"]["bias"][selected], drawn["Dense_0"]["bias"][selected])
    np.testing.assert_array_equal(new["Dense_0"]["bias"][kept], old["Dense_0"]["bias"][kept])
    np.testing.assert_array_equal(new["Dense_1"]["kernel"][selected], 0.0)  # outgoing rows
    np.testing.assert_array_equal(new["Dense_1"]["kernel"][kept], old["Dense_1"]["kernel"][kept])
    np.testing.assert_array_equal(new["Dense_1"]["bias"], old["Dense_1"]["bias"])
    if layer_norm:
        np.testing.assert_array_equal(new["LayerNorm_0"]["scale"][selected], 1.0)
        np.testing.assert_array_equal(new["LayerNorm_0"]["bias"][selected], 0.0)
        np.testing.assert_array_equal(new["LayerNorm_0"]["scale"][kept], old["LayerNorm_0"]["scale"][kept])
        np.testing.assert_array_equal(new["LayerNorm_1"]["scale"], old["LayerNorm_1"]["scale"])
    np.testing.assert_array_equal(new_variables["params"]["layers_1"]["kernel"], variables["params"]["layers_1"]["kernel"])

    adam_state = opt_state[0]
    new_adam_state = new_opt_state[0]
    for moments, new_moments in ((adam_state.mu, new_adam_state.mu), (adam_state.nu, new_adam_state.nu)):
        for moment, new_moment, mask in zip(
            jax.tree.leaves(moments), jax.tree.leaves(new_moments), jax.tree.leaves(touched), strict=True
        ):
            np.testing.assert_array_equal(np.asarray(new_moment)[np.asarray(mask)], 0.0)
            np.testing.assert_array_equal(np.asarray(new_moment)[~np.asarray(mask)], np.asarray(moment)[~np.asarray(mask)])
    assert int(new_adam_state.count) == int(adam_state.count)


def test_reset_of_dead_units_keeps_outputs_and_skips_output_layer():
    net = ActorCritic(Discrete(3), hidden_sizes=(16,), conv_channels=(4,), observation_ndim=3,
                      activation="relu", shared_trunk=True)
    images = jax.random.normal(jax.random.PRNGKey(0), (8, 5, 5, 3))
    variables = net.init(jax.random.PRNGKey(1), images)
    params = variables["params"]["trunk"]
    dead_channels, dead_units = jnp.array([0, 2]), jnp.array([3, 7, 11])
    params["ConvTorso_0"]["Conv_0"]["bias"] = params["ConvTorso_0"]["Conv_0"]["bias"].at[dead_channels].set(-1e3)
    params["MLP_0"]["Dense_0"]["bias"] = params["MLP_0"]["Dense_0"]["bias"].at[dead_units].set(-1e3)
    optimizer = optax.adam(1e-3)
    config = PlasticityConfig(method="redo", threshold=0.0, max_reset_fraction=1.0, period=1)
    tools = UnitPlasticity(config, net.apply, variables, (images,), lambda key: net.init(key, images), optimizer)
    (_, _), capture = jax.jit(lambda v: tools.apply(v, None, images))(variables)
    masks = select_units(redo_scores(capture), 0.0, 1.0)
    np.testing.assert_array_equal(np.flatnonzero(masks["trunk/ConvTorso_0/Conv_0"]), dead_channels)
    assert set(np.flatnonzero(masks["trunk/MLP_0/Dense_0"])) >= set(np.asarray(dead_units))  # relu may kill more
    assert set(masks) == {layer.key for layer in tools.layout.hidden}  # heads are never candidates
    num_selected = sum(int(mask.sum()) for mask in masks.values())

    new_variables, opt_state, metrics = jax.jit(tools.maybe_reset)(
        variables, optimizer.init(variables), {"redo": redo_scores(capture), "grama": {}}, jax.random.PRNGKey(5),
        jnp.int32(1),
    )
    assert float(metrics["reset_units_sum"]) == num_selected
    old_policy, old_value = net.apply(variables, images)
    new_policy, new_value = net.apply(new_variables, images)
    np.testing.assert_allclose(new_policy.logits, old_policy.logits, atol=1e-6)
    np.testing.assert_allclose(new_value, old_value, atol=1e-6)
    new_bias = new_variables["params"]["trunk"]["MLP_0"]["Dense_0"]["bias"]
    assert float(new_bias[dead_units].max()) == 0.0  # re-drawn from the zero bias initializer
    head = new_variables["params"]["policy_head"]["logits"]["kernel"]
    assert head.shape == (16, 3) and float(jnp.abs(head[dead_units]).max()) == 0.0


def test_reset_not_due_changes_nothing():
    head, obs, variables, optimizer, opt_state = _trained_mlp(False)
    config = PlasticityConfig(method="regrama", threshold=10.0, max_reset_fraction=1.0, period=3)
    tools = UnitPlasticity(config, head.apply, variables, (obs,), lambda key: head.init(key, obs), optimizer)
    scores = {"redo": {}, "grama": {layer.key: jnp.zeros(5) for layer in tools.layout.hidden}}
    maybe_reset = jax.jit(tools.maybe_reset)
    kept, kept_opt, metrics = maybe_reset(variables, opt_state, scores, jax.random.PRNGKey(0), jnp.int32(2))
    jax.tree.map(np.testing.assert_array_equal, kept, variables)
    assert float(metrics["reset_units_sum"]) == 0.0
    reset, _, metrics = maybe_reset(variables, opt_state, scores, jax.random.PRNGKey(0), jnp.int32(3))
    assert float(metrics["reset_units_sum"]) == 10.0


def test_resets_stay_conditional_under_vmap():
    head, obs, variables, optimizer, opt_state = _trained_mlp(False)
    config = PlasticityConfig(method="regrama", threshold=10.0, max_reset_fraction=1.0, period=3)
    tools = UnitPlasticity(config, head.apply, variables, (obs,), lambda key: head.init(key, obs), optimizer)
    scores = {"redo": {}, "grama": {layer.key: jnp.zeros(5) for layer in tools.layout.hidden}}
    stacked = jax.tree.map(lambda leaf: jnp.stack([leaf, leaf]), (variables, opt_state, scores))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)

    def reset(variables, opt_state, scores, key, step):
        return tools.maybe_reset(variables, opt_state, scores, key, step)

    batched = jax.vmap(reset, in_axes=(0, 0, 0, 0, None))
    # the period check stays a real cond (fresh weights are only drawn when due), not a select
    assert "cond[" in str(jax.make_jaxpr(batched)(*stacked, keys, jnp.int32(3)))
    _, _, due = jax.jit(batched)(*stacked, keys, jnp.int32(3))
    _, _, not_due = jax.jit(batched)(*stacked, keys, jnp.int32(4))
    np.testing.assert_array_equal(due["reset_units_sum"], [10.0, 10.0])
    np.testing.assert_array_equal(not_due["reset_units_sum"], [0.0, 0.0])


def test_effective_rank_and_ntk_gram():
    features = jnp.diag(jnp.array([10.0, 5.0, 1e-4, 0.0]))
    assert int(effective_rank(features)) == 2
    inputs = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    weights = jax.random.normal(jax.random.PRNGKey(1), (3, 2))
    # f(x) = x W: d f_o(x) / d W[j, k] = x_j [o == k], so K[(n, o), (m, p)] = <x_n, x_m> [o == p]
    gram = ntk_gram(lambda w, x: x @ w, weights, inputs)
    np.testing.assert_allclose(gram, jnp.kron(inputs @ inputs.T, jnp.eye(2)), rtol=1e-5, atol=1e-5)


def test_weight_norm_and_gradient_kurtosis():
    assert float(weight_norm({"a": jnp.array([3.0]), "b": jnp.array([[4.0]])})) == pytest.approx(5.0)
    # values +-1: fourth central moment 1, variance 1 -> kurtosis 1
    assert float(gradient_kurtosis({"g": jnp.array([1.0, -1.0, 1.0, -1.0])})) == pytest.approx(1.0)
