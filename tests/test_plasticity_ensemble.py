"""ReDo / ReGraMa on an nn.vmap critic ensemble: every member's units are scored against a
numpy computation of that member alone, and resets touch only the selected member's units."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl_suite.networks.off_policy_heads import CRITIC_MEMBERS, CriticEnsemble, critic_member
from jaxrl_suite.plasticity import PlasticityConfig, StackedMembers, UnitPlasticity

NUM_CRITICS, WIDTH, BATCH = 3, 6, 5
FIRST, SECOND = "MLP_0/Dense_0", "MLP_0/Dense_1"
OBS = jax.random.normal(jax.random.PRNGKey(0), (BATCH, 3))
ACTION = jax.random.uniform(jax.random.PRNGKey(1), (BATCH, 2), minval=-1.0, maxval=1.0)
# A different loss weight per member, so that members' gradients differ in scale.
MEMBER_WEIGHTS = jnp.array([1.0, 3.0, 0.5])


def _ensemble_tools(layer_norm=False, score="activation_grad", **config):
    critic = CriticEnsemble(NUM_CRITICS, (WIDTH, WIDTH), "relu", layer_norm)
    optimizer = optax.adam(1e-2)

    def init(key):
        return critic.init(key, OBS, ACTION)

    members = StackedMembers((CRITIC_MEMBERS,), NUM_CRITICS, critic_member(critic).apply)
    plasticity = PlasticityConfig(**{"method": "regrama", "score": score, **config})
    tools = UnitPlasticity(plasticity, critic.apply, jax.eval_shape(init, jax.random.PRNGKey(0)), (OBS, ACTION),
                           init, optimizer, ensemble=members)
    return critic, tools, optimizer, init(jax.random.PRNGKey(2))


def _loss_and_scores(tools, variables):
    def loss_fn(variables, perturbations):
        q, capture = tools.apply(variables, perturbations, OBS, ACTION)
        return jnp.sum(MEMBER_WEIGHTS * jnp.mean(jnp.square(q), axis=1)), (q, capture)

    (_, (q, capture)), (grads, perturbation_grads) = jax.value_and_grad(loss_fn, (0, 1), has_aux=True)(
        variables, tools.perturbations(variables, OBS, ACTION)
    )
    return q, tools.scores(capture, perturbation_grads, grads)


def _numpy_member_statistics(member_params, weight):
    """Per-unit E|h|, E|dL/dz| and mean_j |dL/dW[j, i]| of one critic, by hand in numpy."""
    p = jax.tree.map(np.asarray, member_params)["MLP_0"]
    x = np.concatenate([np.asarray(OBS), np.asarray(ACTION)], -1)
    z0 = x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    h0 = np.maximum(z0, 0)
    z1 = h0 @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
    h1 = np.maximum(z1, 0)
    q = h1 @ member_params["q"]["kernel"][:, 0] + member_params["q"]["bias"][0]
    dq = weight * 2.0 * np.asarray(q) / BATCH  # dL/dq of L = weight * mean q^2
    dz1 = dq[:, None] * np.asarray(member_params["q"]["kernel"])[:, 0][None] * (z1 > 0)
    dz0 = (dz1 @ p["Dense_1"]["kernel"].T) * (z0 > 0)

    return {
        "redo": {FIRST: np.abs(h0).mean(0), SECOND: np.abs(h1).mean(0)},
        "activation_grad": {FIRST: np.abs(dz0).mean(0), SECOND: np.abs(dz1).mean(0)},
        "kernel_grad": {FIRST: np.abs(x.T @ dz0).mean(0), SECOND: np.abs(h0.T @ dz1).mean(0)},
    }


@pytest.mark.parametrize("score", ["activation_grad", "kernel_grad"])
def test_each_member_is_scored_as_a_network_of_its_own(score):
    critic, tools, _, variables = _ensemble_tools(score=score)
    params = variables["params"][CRITIC_MEMBERS]
    # Member 1's first layer 10x larger: a layer mean pooled over members would shift every score.
    params["MLP_0"]["Dense_0"]["kernel"] = params["MLP_0"]["Dense_0"]["kernel"].at[1].multiply(10.0)
    q, scores = jax.jit(lambda v: _loss_and_scores(tools, v))(variables)

    np.testing.assert_array_equal(q, critic.apply(variables, OBS, ACTION))  # same outputs as the ensemble
    assert [layer.key for layer in tools.layout.hidden] == [FIRST, SECOND]
    for kind in ("redo", "grama"):
        chex.assert_shape(list(scores[kind].values()), (NUM_CRITICS, WIDTH))
    statistics = [_numpy_member_statistics(jax.tree.map(lambda leaf, i=member: leaf[i], params), MEMBER_WEIGHTS[member])
                  for member in range(NUM_CRITICS)]
    for kind, statistic in (("redo", "redo"), ("grama", score)):
        for key in (FIRST, SECOND):
            raw = np.stack([member_statistics[statistic][key] for member_statistics in statistics])
            per_member = raw / raw.mean(1, keepdims=True)
            np.testing.assert_allclose(scores[kind][key], per_member, rtol=1e-4, atol=1e-6)
            assert not np.allclose(per_member, raw / raw.mean(), rtol=0.1)  # pooling members would show


@pytest.mark.parametrize("layer_norm", [False, True])
def test_reset_changes_only_the_selected_units_of_the_selected_member(layer_norm):
    _, tools, optimizer, variables = _ensemble_tools(layer_norm, threshold=0.5, max_reset_fraction=1.0, period=1)
    grads = jax.grad(lambda v: tools.apply(v, None, OBS, ACTION)[0].sum())(variables)
    _, opt_state = optimizer.update(grads, optimizer.init(variables))  # non-zero Adam moments
    target = jax.tree.map(lambda leaf: leaf + 1.0, variables)
    member, units = 1, np.array([1, 4])
    grama = {key: jnp.ones((NUM_CRITICS, WIDTH)) for key in (FIRST, SECOND)}
    grama[FIRST] = grama[FIRST].at[member, units].set(0.0)
    key = jax.random.PRNGKey(9)

    new, new_opt_state, new_target, metrics = jax.jit(tools.maybe_reset_with_target)(
        variables, opt_state, target, {"redo": {}, "grama": grama}, key, jnp.int32(1)
    )

    assert float(metrics["reset_units_sum"]) == len(units)
    fresh = tools.init_fn(key)["params"][CRITIC_MEMBERS]["MLP_0"]
    expected = jax.tree.map(np.array, variables)
    touched = jax.tree.map(lambda leaf: np.zeros(leaf.shape, bool), variables)
    layers, layer_touched = expected["params"][CRITIC_MEMBERS]["MLP_0"], touched["params"][CRITIC_MEMBERS]["MLP_0"]
    redrawn = [("Dense_0", "kernel"), ("Dense_0", "bias")]
    redrawn += [("LayerNorm_0", "scale"), ("LayerNorm_0", "bias")] if layer_norm else []
    for module, name in redrawn:
        layers[module][name][member][..., units] = np.asarray(fresh[module][name][member])[..., units]
        layer_touched[module][name][member][..., units] = True
    layers["Dense_1"]["kernel"][member][units, :] = 0.0  # outgoing weights
    layer_touched["Dense_1"]["kernel"][member][units, :] = True

    jax.tree.map(np.testing.assert_array_equal, new, expected)  # everything else bit for bit
    jax.tree.map(lambda t, n, o, m: np.testing.assert_array_equal(t, np.where(m, n, o)), new_target, new, target,
                 touched)
    for moments, new_moments in ((opt_state[0].mu, new_opt_state[0].mu), (opt_state[0].nu, new_opt_state[0].nu)):
        jax.tree.map(lambda old, fresh_moment, mask: np.testing.assert_array_equal(
            fresh_moment, np.where(mask, 0.0, old)), moments, new_moments, touched)
    assert int(new_opt_state[0].count) == int(opt_state[0].count)


def test_critic_outputs_unchanged_right_after_resetting_dead_units():
    critic, tools, optimizer, variables = _ensemble_tools(threshold=0.0, max_reset_fraction=1.0, period=1,
                                                          method="redo")
    layers = variables["params"][CRITIC_MEMBERS]["MLP_0"]
    dead_first, dead_second = np.array([0, 3]), np.array([2])
    layers["Dense_0"]["bias"] = layers["Dense_0"]["bias"].at[0, dead_first].set(-1e3)
    layers["Dense_1"]["bias"] = layers["Dense_1"]["bias"].at[2, dead_second].set(-1e3)
    q, scores = jax.jit(lambda v: _loss_and_scores(tools, v))(variables)
    masks = scores["redo"]
    np.testing.assert_array_equal(np.flatnonzero(masks[FIRST][0] <= 0.0), dead_first)

    new, _, metrics = jax.jit(tools.maybe_reset)(variables, optimizer.init(variables), scores, jax.random.PRNGKey(3),
                                                 jnp.int32(1))

    assert float(metrics["reset_units_sum"]) >= len(dead_first) + len(dead_second)
    new_layers = new["params"][CRITIC_MEMBERS]["MLP_0"]
    assert float(jnp.abs(new_layers["Dense_0"]["bias"][0, dead_first]).max()) == 0.0  # re-drawn (zero init)
    np.testing.assert_allclose(critic.apply(new, OBS, ACTION), q, atol=1e-5)


def test_ensemble_must_hold_every_parameter():
    members = StackedMembers(("critics",), 2, lambda variables, x: x)
    with pytest.raises(ValueError, match="must hold every parameter.*'actor', 'critics'"):
        members.members({"params": {"critics": {}, "actor": {}}})
