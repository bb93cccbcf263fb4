"""DyMo training pieces: FC/SP row layout and masks on hand-made tasks, the L_FC + lambda * L_SP loss and its
token counts, the lambda = 0 ablation contract, bad input, a short train smoke and the ToolCallModel adapter.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.lm.finetune import EOS_ID, PAD_ID, sequence_logprobs
from jaxrl_suite.models import count_parameters, init_params, model_config
from jaxrl_suite.tooluse import (
    ALL_TOOLS,
    Call,
    Clause,
    FieldWidths,
    SelectionConfig,
    State,
    Task,
    make_episodes,
    make_split,
    select_action,
)
from jaxrl_suite.tooluse.lm_model import LanguageModelToolCaller, decode_field
from jaxrl_suite.tooluse.objective import (
    DymoBatch,
    DymoConfig,
    dymo_loss,
    init_train_state,
    make_train_step,
    task_order,
    training_batches,
)
from jaxrl_suite.tooluse.rows import (
    encode_fc_rows,
    encode_sp_rows,
    fc_prompt_width,
    fc_response_width,
    sp_pair,
    sp_prompt,
    sp_prompt_width,
    sp_response_width,
    task_prompt,
)

# Narrow widths keep the hand-written rows readable; the request below fills its field exactly.
W = FieldWidths(request=26, state=12, tools=25, calls=21, reads=3)
STATE = State.from_mapping({"ant": 1, "bee": 2})
ANSWERABLE = Task(
    request="put 3 in ant then read ant",
    initial_state=STATE,
    available_tools=ALL_TOOLS,
    clauses=(Clause("put", ("ant",), 3), Clause("read", ("ant",))),
    gold_calls=(Call("set", ("ant", "3")), Call("get", ("ant",))),
    gold_state=State.from_mapping({"ant": 3, "bee": 2}),
    gold_reads=("3",),
)
REFUSAL = Task(
    request="delete bee",
    initial_state=STATE,
    available_tools=ALL_TOOLS - {"del"},
    clauses=(Clause("delete", ("bee",)),),
    gold_calls=(),
    gold_state=STATE,
    gold_reads=(),
    unanswerable_reason="removed_tool",
)
TASKS = (ANSWERABLE, REFUSAL)
FC_PROMPT = "R:put 3 in ant then read ant|T:add,del,get,move,set,swap|S:ant=1;bee=2;|C:"
MODEL = model_config("fox-tiny", d_model=32, num_heads=2, num_layers=1, mlp_multiple_of=16, tie_embeddings=True,
                     attention_impl="reference")  # the dense reference compiles fastest on CPU

loss_jit = jax.jit(dymo_loss, static_argnames="model")


def byte_list(text):
    return list(text.encode())


@pytest.fixture(scope="module")
def params():
    return init_params(MODEL, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def hand_batch():
    fc, sp = encode_fc_rows(TASKS, W), encode_sp_rows(TASKS, W)
    return DymoBatch(jnp.asarray(fc.tokens), jnp.asarray(fc.mask), jnp.asarray(sp.tokens), jnp.asarray(sp.mask))


def test_row_widths():
    assert (fc_prompt_width(W), fc_response_width(W), sp_prompt_width(W), sp_response_width(W)) == (74, 22, 98, 13)
    # Default widths: 2 + 72 + 3 + 25 + 3 + 24 + 3, then the calls field + EOS; SP adds the call and `|N:`.
    widths = (fc_prompt_width(), fc_response_width(), sp_prompt_width(), sp_response_width())
    assert widths == (132, 42, 176, 25)


def test_fc_rows_exact_text_and_mask():
    assert task_prompt(ANSWERABLE, W) == FC_PROMPT and len(FC_PROMPT) == 74
    assert task_prompt(REFUSAL, W) == "R:delete bee" + " " * 16 + "|T:add,get,move,set,swap" + " " * 4 + (
        "|S:ant=1;bee=2;|C:")
    rows = encode_fc_rows(TASKS, W)
    assert rows.tokens.dtype == np.int32 and rows.tokens.shape == (2, 96) and rows.prompt_width == 74
    np.testing.assert_array_equal(rows.tokens[0], byte_list(FC_PROMPT + "set(ant,3);get(ant)") + [EOS_ID, PAD_ID, PAD_ID])
    np.testing.assert_array_equal(rows.tokens[1, 74:], byte_list("<no_call>") + [EOS_ID] + [PAD_ID] * 12)
    # Targets: the 19 call bytes + EOS at columns 74..93; the 9 refusal bytes + EOS at 74..83; nothing else.
    np.testing.assert_array_equal(np.flatnonzero(rows.mask[0]), np.arange(74, 94))
    np.testing.assert_array_equal(np.flatnonzero(rows.mask[1]), np.arange(74, 84))
    assert rows.target_tokens == 30


def test_sp_rows_exact_text_and_mask():
    prompt, target = sp_pair(ANSWERABLE, W)
    assert prompt == FC_PROMPT + "set(ant,3);get(ant)  |N:" and target == "ant=3;bee=2;"
    assert sp_prompt(FC_PROMPT, "<no_call>", W) == FC_PROMPT + "<no_call>" + " " * 12 + "|N:"
    rows = encode_sp_rows(TASKS, W)
    assert rows.tokens.shape == (2, 111) and rows.prompt_width == 98
    np.testing.assert_array_equal(rows.tokens[0], byte_list(prompt + target) + [EOS_ID])
    # The refusal's next state is its unchanged state.
    np.testing.assert_array_equal(rows.tokens[1, 98:], byte_list("ant=1;bee=2;") + [EOS_ID])
    for row in rows.mask:
        np.testing.assert_array_equal(np.flatnonzero(row), np.arange(98, 111))
    # SP prompts extend the FC prompts of the same tasks.
    np.testing.assert_array_equal(rows.tokens[:, :74], encode_fc_rows(TASKS, W).tokens[:, :74])


def test_generated_tasks_fit_default_widths():
    turns = [turn for episode in make_episodes("test_compositions", 10, 4, seed=0) for turn in episode.turns]
    tasks = make_split("train", 40, seed=0) + make_split("test_keys", 40, seed=0) + tuple(turns)
    fc, sp = encode_fc_rows(tasks), encode_sp_rows(tasks)
    assert fc.tokens.shape == (120, 174) and sp.tokens.shape == (120, 201)
    assert not fc.mask[:, :132].any() and not sp.mask[:, :176].any()


def test_loss_counts_only_target_tokens(params, hand_batch):
    loss, metrics = loss_jit(MODEL, params, hand_batch, 0.5)
    counts = {name: int(metrics[name]) for name in
              ("fc_target_tokens", "sp_target_tokens", "fc_row_tokens", "sp_row_tokens")}
    assert counts == {"fc_target_tokens": 20 + 10, "sp_target_tokens": 13 + 13, "fc_row_tokens": 2 * 96,
                      "sp_row_tokens": 2 * 111}
    # Each term is the mean negative log-probability over its own 30 / 26 target tokens.
    fc_logprobs = sequence_logprobs(MODEL, params, hand_batch.fc_tokens, hand_batch.fc_mask)
    sp_logprobs = sequence_logprobs(MODEL, params, hand_batch.sp_tokens, hand_batch.sp_mask)
    np.testing.assert_allclose(metrics["fc_loss"], -fc_logprobs.sum() / 30, rtol=1e-6)
    np.testing.assert_allclose(metrics["sp_loss"], -sp_logprobs.sum() / 26, rtol=1e-6)
    np.testing.assert_allclose(loss, metrics["fc_loss"] + 0.5 * metrics["sp_loss"], rtol=1e-6)
    # Bytes outside the targets (the padding after EOS) do not move the loss; a target byte does.
    fc_tokens = hand_batch.fc_tokens.at[0, 95].set(ord("x"))
    padded = hand_batch.replace(fc_tokens=fc_tokens)
    assert float(loss_jit(MODEL, params, padded, 0.5)[0]) == float(loss)
    target = hand_batch.replace(fc_tokens=hand_batch.fc_tokens.at[0, 80].set(ord("x")))
    assert abs(float(loss_jit(MODEL, params, target, 0.5)[0]) - float(loss)) > 1e-4


def test_zero_sp_weight_equals_fc_only_loss_exactly(params, hand_batch):
    fc_only = DymoBatch(hand_batch.fc_tokens, hand_batch.fc_mask)
    loss_and_grad = jax.jit(jax.value_and_grad(lambda p, batch: dymo_loss(MODEL, p, batch, 0.0), has_aux=True))
    (loss, metrics), grads = loss_and_grad(params, hand_batch)
    (fc_loss, fc_metrics), fc_grads = loss_and_grad(params, fc_only)
    assert float(loss) == float(fc_loss) == float(metrics["fc_loss"])
    assert int(metrics["sp_target_tokens"]) == 0 and int(metrics["sp_row_tokens"]) == 0
    assert int(metrics["fc_target_tokens"]) == int(fc_metrics["fc_target_tokens"]) == 30
    for with_sp, without in zip(jax.tree.leaves(grads), jax.tree.leaves(fc_grads), strict=True):
        np.testing.assert_array_equal(with_sp, without)
    # A traced weight of 0 (as in a sweep) computes the SP term, times zero: the loss is still exact.
    traced_loss, traced_metrics = loss_jit(MODEL, params, hand_batch, jnp.float32(0.0))
    assert float(traced_loss) == float(fc_loss) and int(traced_metrics["sp_target_tokens"]) == 26


def test_ablation_same_fc_rows_same_order_same_steps():
    tasks = make_split("train", 10, seed=3)
    fc, sp = encode_fc_rows(tasks), encode_sp_rows(tasks)
    fields = dict(batch_size=4, steps=6, warmup_steps=0, seed=7)
    fc_only = list(training_batches(DymoConfig(sp_weight=0.0, **fields), fc))
    dymo = list(training_batches(DymoConfig(sp_weight=1.0, **fields), fc, sp))
    assert len(fc_only) == len(dymo) == 6
    for plain, joint in zip(fc_only, dymo, strict=True):
        np.testing.assert_array_equal(plain.fc_tokens, joint.fc_tokens)
        np.testing.assert_array_equal(plain.fc_mask, joint.fc_mask)
        assert plain.sp_tokens is None and joint.sp_tokens.shape == (4, 201)
        np.testing.assert_array_equal(joint.sp_tokens[:, :132], joint.fc_tokens[:, :132])  # same tasks
    # Every task once per epoch: 24 rows over 10 tasks are 2 full permutations and 4 more.
    order = task_order(10, 4, 6, seed=7).ravel()
    assert sorted(order[:10]) == list(range(10)) == sorted(order[10:20])
    assert not np.array_equal(order, task_order(10, 4, 6, seed=8).ravel())


@pytest.mark.parametrize("fields, message", [
    (dict(sp_weight=-1.0), "invalid DymoConfig.sp_weight=-1.0: expected a finite number >= 0 (0 = FC only)"),
    (dict(sp_weight=float("nan")), "invalid DymoConfig.sp_weight=nan: expected a finite number >= 0"),
    (dict(widths=FieldWidths(state=20)),
     "invalid FieldWidths.state=20: expected an integer >= 24 for keys of up to 3 letters and 4 slots"),
    (dict(widths=FieldWidths(calls=40)),
     "invalid FieldWidths.calls=40: expected an integer >= 41 for keys of up to 3 letters and 4 slots"),
    (dict(batch_size=0), "invalid DymoConfig.batch_size=0: expected an integer >= 1"),
    (dict(steps=10, warmup_steps=10), "invalid DymoConfig.warmup_steps=10: expected an integer in [0, steps=10)"),
    (dict(learning_rate=0.0), "invalid train.learning_rate=0.0: expected a positive number"),
])
def test_bad_config_is_one_line(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        DymoConfig(**fields)
    assert "\n" not in str(error.value)


def test_bad_rows_and_loss_input(params, hand_batch):
    with pytest.raises(ValueError, match=re.escape("invalid dymo_loss.sp_weight=-0.5: expected a finite number")):
        dymo_loss(MODEL, params, hand_batch, -0.5)
    with pytest.raises(ValueError, match=re.escape(
            "invalid pad_field.request='put 3 in ant then read ant': expected at most 25 characters")):
        encode_fc_rows([ANSWERABLE], FieldWidths(request=25, state=12, tools=25, calls=21, reads=3))
    with pytest.raises(ValueError, match=re.escape("invalid pad_field.calls='set(ant,3);get(ant)': expected at most 18")):
        encode_fc_rows([ANSWERABLE], FieldWidths(request=26, state=12, tools=25, calls=18, reads=3))
    with pytest.raises(ValueError, match=re.escape("invalid sp_prompt.fc_prompt='R:': expected an FC prompt of 74")):
        sp_prompt("R:", "get(ant)", W)
    with pytest.raises(ValueError, match=re.escape("invalid training_batches.sp_rows=None: expected one SP row")):
        next(training_batches(DymoConfig(steps=2, warmup_steps=0), encode_fc_rows(TASKS, W)))


def test_train_steps_lower_the_loss_on_a_fixed_batch(hand_batch):
    config = DymoConfig(sp_weight=1.0, batch_size=2, steps=10, learning_rate=1e-2, warmup_steps=0, seed=0)
    state, step = init_train_state(config, MODEL), make_train_step(config, MODEL)
    assert count_parameters(state.params) < 50_000
    losses = []
    for _ in range(config.steps):
        state, metrics = step(state, hand_batch)
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 10 and np.isfinite(losses).all()
    assert (int(metrics["fc_target_tokens"]), int(metrics["sp_target_tokens"])) == (30, 26)
    assert losses[-1] < 0.7 * losses[0], losses


def test_decode_field():
    tokens = np.asarray(byte_list("get(ant)") + [EOS_ID] + byte_list("junk"))
    assert decode_field(tokens, 41) == "get(ant)"
    assert decode_field(np.asarray(byte_list("ant=1;  ")), 24) == "ant=1;"  # no EOS: padding dropped
    assert decode_field(np.asarray(byte_list("abcdef")), 4) == "abcd"
    assert decode_field(np.asarray([0xFF, ord("a"), EOS_ID]), 4) == "\ufffda"


def test_language_model_adapter_drives_svs(params):
    caller = LanguageModelToolCaller(MODEL, params, jax.random.PRNGKey(1), temperature=1.0, widths=W)
    calls = caller.sample_calls(FC_PROMPT, 4)
    assert len(calls) == 4 and all(isinstance(call, str) and len(call) <= W.calls for call in calls)
    assert caller.sample_calls(FC_PROMPT, 4) != calls  # a fresh key per draw
    state = caller.predict_state(FC_PROMPT, "get(ant)")
    assert state == caller.predict_state(FC_PROMPT, "get(ant)") and len(state) <= W.state  # greedy
    selection = select_action(caller, FC_PROMPT, SelectionConfig("internal", k=4, tau=0.5))
    assert selection.num_candidates == 4
    with pytest.raises(ValueError, match=re.escape("invalid sample_calls.prompt='R:': expected an FC prompt of 74")):
        caller.sample_calls("R:", 2)
    with pytest.raises(ValueError, match=re.escape("invalid LanguageModelToolCaller.temperature=-1: expected")):
        LanguageModelToolCaller(MODEL, params, jax.random.PRNGKey(1), temperature=-1)
