"""The tool-use foundation on hand-computed cases: call grammar, slot world, task splits, field widths,
BFCL-style turn scoring, pass^k, and SVS with its baselines and oracles."""

import dataclasses
import random
import re
from collections import Counter

import pytest

from jaxrl_suite.tooluse import (
    ALL_TOOLS,
    FIELD_WIDTHS,
    HELD_OUT_KEYS,
    NO_CALL,
    RESERVED_COMPOSITIONS,
    SPLITS,
    TRAIN_KEYS,
    UNANSWERABLE_REASONS,
    Call,
    Clause,
    Episode,
    FieldWidths,
    MalformedCallError,
    Selection,
    SelectionConfig,
    State,
    Task,
    World,
    check_field_widths,
    consistency_select,
    execution_oracle_select,
    first_select,
    format_call,
    format_calls,
    format_state,
    gold_oracle_select,
    is_error,
    make_episodes,
    make_split,
    pad_field,
    parse_call,
    parse_calls,
    parse_state,
    pass_hat_k,
    required_field_widths,
    score_episode,
    score_turn,
    select_action,
    svs_select,
    task_fields,
)
from jaxrl_suite.tooluse.templates import clause_call, compositions, render_request


def raises_exactly(message, error=ValueError):
    """pytest.raises for an error whose whole message is `message` (one line)."""
    return pytest.raises(error, match=f"^{re.escape(message)}$")


# ---- grammar ----


@pytest.mark.parametrize(
    "text, position, expected",
    [
        ("set(ant 3)", 7, "expected ',' or ')', found ' '"),
        ("set(a1,3)", 5, "expected ',' or ')', found '1'"),
        ("set(ant,3", 9, "expected ',' or ')', found end of text"),
        ("Set(ant,3)", 0, "expected a tool name (a-z), found 'S'"),
        ("set ant", 3, "expected a letter or '(', found ' '"),
        ("set(ant,)", 8, "expected an argument (a-z or 0-9), found ')'"),
        ("set(ant,3);", 11, "expected a tool name (a-z), found end of text"),
        ("set(ant,3)get(ant)", 10, "expected ';' or end of text, found 'g'"),
        ("set(ant,3); get(ant)", 11, "expected a tool name (a-z), found ' '"),
        ("eval(__import__)", 5, "expected an argument (a-z or 0-9) or ')', found '_'"),
        ("<no_call>;get(ant)", 0, "expected a tool name (a-z), found '<'"),
        ("", 0, "expected a tool name (a-z), found end of text"),
    ],
)
def test_grammar_rejects_malformed_calls_naming_the_position(text, position, expected):
    with pytest.raises(MalformedCallError) as caught:
        parse_calls(text)
    assert caught.value.position == position
    assert str(caught.value) == f"malformed call at position {position}: {expected}"


def test_parse_call_takes_exactly_one_call():
    assert parse_call("move(ant,bee)") == Call("move", ("ant", "bee"))
    with raises_exactly("malformed call at position 8: expected end of text, found ';'", MalformedCallError):
        parse_call("get(ant);get(bee)")


@pytest.mark.parametrize(
    "text",
    [
        "set(ant,3)",
        "move(ant,bee)",
        "get(cat)",
        "set(ant,3);get(ant)",
        "del(owl);swap(ant,bee);add(cat,12)",
        "foo()",
        NO_CALL,
    ],
)
def test_canonical_text_round_trips(text):
    assert format_calls(parse_calls(text)) == text


def test_calls_round_trip_through_text():
    calls = (Call("set", ("ant", "3")), Call("get", ("ant",)), Call("noop"))
    assert format_calls(calls) == "set(ant,3);get(ant);noop()"
    assert parse_calls(format_calls(calls)) == calls
    assert all(parse_call(format_call(call)) == call for call in calls)
    assert parse_calls(NO_CALL) == () and format_calls(()) == NO_CALL


def test_call_refuses_fields_the_grammar_could_not_write():
    with pytest.raises(ValueError, match=r"^invalid Call.tool='Set': expected lowercase letters a-z$"):
        Call("Set", ("ant",))
    with pytest.raises(ValueError, match=r"^invalid Call.args=\['ant'\]: expected a tuple of arguments"):
        Call("get", ["ant"])
    with pytest.raises(ValueError, match=r"^invalid Call.args=\('a1',\)"):
        Call("get", ("a1",))


# ---- world ----


START = parse_state("ant=3;bee=0;cat=7;")


def run(call_text, state=START, world=World()):
    next_state, observation = world.execute(state, parse_call(call_text))
    return format_state(next_state), observation


def test_write_tools_by_hand():
    assert run("set(bee,5)") == ("ant=3;bee=5;cat=7;", "ok")
    assert run("add(cat,5)") == ("ant=3;bee=0;cat=2;", "ok")  # 7 + 5 = 12 wraps to 2
    assert run("add(ant,0)") == ("ant=3;bee=0;cat=7;", "ok")
    assert run("move(ant,cat)") == ("bee=0;cat=3;", "ok")  # cat takes ant's 3, ant is gone
    assert run("del(bee)") == ("ant=3;cat=7;", "ok")
    assert run("swap(ant,cat)") == ("ant=7;bee=0;cat=3;", "ok")


def test_get_reads_the_value_as_text():
    assert run("get(cat)") == ("ant=3;bee=0;cat=7;", "7")
    assert run("get(bee)") == ("ant=3;bee=0;cat=7;", "0")


@pytest.mark.parametrize(
    "call_text, observation",
    [
        ("get(dog)", "error: unknown key 'dog'"),
        ("move(ant,dog)", "error: unknown key 'dog'"),
        ("foo(ant)", "error: unknown tool 'foo'"),
        ("set(ant)", "error: set takes 2 arguments (key, value), got 1"),
        ("del(ant,bee)", "error: del takes 1 argument (key), got 2"),
        ("set(ant,12)", "error: invalid value '12' for set: expected a digit 0-9"),
        ("add(ant,bee)", "error: invalid value 'bee' for add: expected a digit 0-9"),
        ("move(ant,ant)", "error: move needs two different keys, got 'ant' twice"),
        ("swap(bee,bee)", "error: swap needs two different keys, got 'bee' twice"),
    ],
)
def test_bad_calls_give_an_error_observation_and_change_nothing(call_text, observation):
    assert run(call_text) == ("ant=3;bee=0;cat=7;", observation)
    assert is_error(observation)


def test_removed_tools_are_unknown():
    world = World().without_tools("del", "swap")
    assert world.available_tools == frozenset({"add", "get", "move", "set"})
    assert run("del(ant)", world=world) == ("ant=3;bee=0;cat=7;", "error: unknown tool 'del'")
    assert run("set(ant,1)", world=world) == ("ant=1;bee=0;cat=7;", "ok")
    assert world.names_unknown(START, parse_call("del(ant)"))
    assert World().names_unknown(START, parse_call("get(dog)"))
    assert not World().names_unknown(START, parse_call("set(ant,12)"))  # a bad value, not a made-up name


def test_deleted_keys_are_unknown_afterwards_and_execute_all_keeps_going():
    state, observations = World().execute_all(START, parse_calls("del(ant);get(ant);add(bee,4);get(bee)"))
    assert format_state(state) == "bee=4;cat=7;"
    assert observations == ("ok", "error: unknown key 'ant'", "ok", "4")


def test_states_are_immutable_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        START.slots = ()
    assert State.from_mapping({"cat": 1, "ant": 2}).slots == (("ant", 2), ("cat", 1))
    with raises_exactly("invalid State.slots['ant']=10: expected an integer in [0, 9]"):
        State((("ant", 10),))
    with raises_exactly("invalid State.keys=('bee', 'ant'): expected unique keys in sorted order"):
        State((("bee", 1), ("ant", 2)))


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "ant=3;bee",
            "invalid state text 'ant=3;bee' at position 9: expected a letter or '=', found end of text",
        ),
        ("ant = 3;", "invalid state text 'ant = 3;' at position 3: expected a letter or '=', found ' '"),
        ("ant=12;", "invalid state text 'ant=12;' at position 5: expected ';', found '2'"),
        ("ant=x;", "invalid state text 'ant=x;' at position 4: expected a digit 0-9, found 'x'"),
        (";", "invalid state text ';' at position 0: expected a key (a-z), found ';'"),
        (
            "bee=1;ant=2;",
            "invalid state text 'bee=1;ant=2;': expected unique keys in sorted order, got ['bee', 'ant']",
        ),
        (
            "ant=1;ant=2;",
            "invalid state text 'ant=1;ant=2;': expected unique keys in sorted order, got ['ant', 'ant']",
        ),
    ],
)
def test_parse_state_is_strict(text, message):
    with pytest.raises(ValueError) as caught:
        parse_state(text)
    assert str(caught.value) == message


def test_state_text_round_trips():
    assert parse_state("") == State()
    assert format_state(parse_state("ant=3;bee=0;cat=7;")) == "ant=3;bee=0;cat=7;"


# ---- tasks ----


def intended_calls(task):
    """The calls a task's clauses would make, for clauses that name their value."""
    return tuple(clause_call(clause) for clause in task.clauses)


@pytest.mark.parametrize("name", list(SPLITS))
def test_gold_programs_reach_their_gold_states(name):
    for task in make_split(name, 300, seed=11):
        assert task.request == render_request(task.clauses)
        if task.answerable:
            state, observations = task.world.execute_all(task.initial_state, task.gold_calls)
            assert state == task.gold_state and not any(map(is_error, observations))
            assert task.gold_reads == tuple(
                o for c, o in zip(task.gold_calls, observations, strict=True) if c.tool == "get"
            )
            assert 1 <= len(task.gold_calls) <= 3
            assert parse_calls(format_calls(task.gold_calls)) == task.gold_calls
        else:
            assert (task.gold_calls, task.gold_reads, task.gold_state) == ((), (), task.initial_state)
            if task.unanswerable_reason == "missing_value":
                assert "something" in task.request
            else:  # the request names a key the state lacks or a tool the world lacks
                _, observations = task.world.execute_all(task.initial_state, intended_calls(task))
                assert any(map(is_error, observations))


def test_unanswerable_fraction_and_reasons():
    tasks = make_split("train", 2000, seed=5)
    unanswerable = [task for task in tasks if not task.answerable]
    assert 0.15 <= len(unanswerable) / len(tasks) <= 0.20
    assert {task.unanswerable_reason for task in unanswerable} == set(UNANSWERABLE_REASONS)


def test_generation_is_seeded():
    assert make_split("train", 50, seed=3) == make_split("train", 50, seed=3)
    assert make_split("train", 50, seed=3) != make_split("train", 50, seed=4)
    assert make_episodes("test_keys", 5, 3, seed=3) == make_episodes("test_keys", 5, 3, seed=3)


def keys_of(task):
    return set(task.initial_state.keys) | {key for clause in task.clauses for key in clause.keys}


def test_held_out_splits_never_overlap_train():
    train, test_keys = make_split("train", 400, seed=2), make_split("test_keys", 400, seed=2)
    test_compositions = make_split("test_compositions", 400, seed=2)
    assert all(keys_of(task) <= set(TRAIN_KEYS) for task in train + test_compositions)
    assert all(keys_of(task) <= set(HELD_OUT_KEYS) for task in test_keys)
    assert not set(TRAIN_KEYS) & set(HELD_OUT_KEYS)
    assert not any(compositions(task.template_names) & RESERVED_COMPOSITIONS for task in train + test_keys)
    assert all(compositions(task.template_names) & RESERVED_COMPOSITIONS for task in test_compositions)
    assert not {task.request for task in train} & {task.request for task in test_compositions + test_keys}


@pytest.mark.parametrize("name", list(SPLITS))
def test_episodes_carry_the_state_over(name):
    episodes = make_episodes(name, 40, 4, seed=9)
    turns = [turn for episode in episodes for turn in episode.turns]
    assert 0.15 <= sum(not turn.answerable for turn in turns) / len(turns) <= 0.20
    for episode in episodes:
        assert len(episode.turns) == 4
        for previous, turn in zip(episode.turns, episode.turns[1:], strict=False):
            assert turn.initial_state == previous.gold_state
        for turn in episode.turns:
            state, observations = turn.world.execute_all(turn.initial_state, turn.gold_calls)
            assert state == turn.gold_state and not any(map(is_error, observations))
    with pytest.raises(ValueError, match=r"^invalid Episode.turns\[1\].initial_state="):
        first, second = episodes[0].turns[:2]
        Episode((first, dataclasses.replace(second, initial_state=State((("zzz", 1),)))))


def test_split_arguments_are_checked():
    with raises_exactly("invalid split.name='dev': expected one of train, test_keys, test_compositions"):
        make_split("dev", 10, seed=0)
    with raises_exactly("invalid split.num_tasks=0: expected an integer >= 1"):
        make_split("train", 0, seed=0)


# ---- field widths ----


def test_field_widths_by_hand():
    assert FIELD_WIDTHS == FieldWidths(request=72, state=24, tools=25, calls=41, reads=5)
    assert required_field_widths() == FIELD_WIDTHS
    check_field_widths()
    # five-letter keys: clauses up to 22 (`put something in zebra`), calls up to 17 (`move(zebra,zebra)`),
    # slots of 8 (`zebra=3;`)
    expected = FieldWidths(request=3 * 22 + 2 * 6, state=4 * 8, tools=25, calls=3 * 17 + 2, reads=5)
    assert required_field_widths(keys=("zebra",)) == expected


def test_too_narrow_widths_give_one_line_errors():
    with raises_exactly(
        "invalid FieldWidths.state=20: expected an integer >= 24 for keys of up to 3 letters and 4 slots"
    ):
        check_field_widths(FieldWidths(state=20))
    with raises_exactly(
        "invalid FieldWidths.request=72: expected an integer >= 78 for keys of up to 5 letters and 4 slots"
    ):
        check_field_widths(FIELD_WIDTHS, keys=("ant", "zebra"))
    with raises_exactly(
        "invalid pad_field.reads='1;2;3;4': expected at most 5 characters (FieldWidths.reads)"
    ):
        pad_field("reads", "1;2;3;4")


def test_every_generated_field_fits_its_width():
    assert pad_field("reads", "3") == "3    "
    for name in SPLITS:
        turns = tuple(turn for episode in make_episodes(name, 30, 3, seed=1) for turn in episode.turns)
        for task in make_split(name, 300, seed=1) + turns:
            fields = task_fields(task)
            assert all(
                len(text) == getattr(FIELD_WIDTHS, "state" if field == "gold_state" else field)
                for field, text in fields.items()
            )


# ---- scoring ----


def hand_task(request, state, clauses, gold_calls, gold_state, gold_reads, reason=None, tools=ALL_TOOLS):
    return Task(
        request,
        parse_state(state),
        tools,
        clauses,
        parse_calls(gold_calls),
        parse_state(gold_state),
        gold_reads,
        reason,
    )


ADD_THEN_READ = hand_task(
    "add 2 to bee then read bee",
    "ant=3;bee=0;",
    (Clause("add", ("bee",), 2), Clause("read", ("bee",))),
    "add(bee,2);get(bee)",
    "ant=3;bee=2;",
    ("2",),
)
REFUSAL = hand_task(
    "put something in ant",
    "ant=3;",
    (Clause("put", ("ant",)),),
    NO_CALL,
    "ant=3;",
    (),
    reason="missing_value",
)


@pytest.mark.parametrize(
    "output, passed, hallucinated",
    [
        ("add(bee,2);get(bee)", True, False),
        ("set(bee,2);get(bee)", True, False),  # another program reaching the same state and read
        ("add(bee,2);get(bee);get(ant)", True, False),  # extra reads pass
        ("add(bee,2);get(bee);get(dog)", True, True),  # passes, yet names an unknown key
        ("add(bee,2)", False, False),  # the read is missing
        ("get(bee);add(bee,2)", False, False),  # read "0" before the add: not the gold read "2"
        ("add(bee,3);get(bee)", False, False),  # state mismatch
        ("add(bee,2) ;get(bee)", False, False),  # malformed
        (NO_CALL, False, False),
    ],
)
def test_turn_scoring_by_hand(output, passed, hallucinated):
    score = score_turn(ADD_THEN_READ, output)
    assert (score.passed, score.hallucinated) == (passed, hallucinated)


def test_any_call_on_a_refusal_turn_fails_and_hallucinates():
    assert score_turn(REFUSAL, NO_CALL).passed and not score_turn(REFUSAL, NO_CALL).hallucinated
    assert score_turn(REFUSAL, ()).passed
    for output in ("get(ant)", "set(ant,3)", "set(ant,5)"):
        score = score_turn(REFUSAL, output)
        assert score.state_matches == (output != "set(ant,5)")
        assert not score.passed and not score.refusal_respected and score.hallucinated


def test_episode_scoring_carries_the_model_state():
    read_bee = hand_task(
        "read bee", "ant=3;bee=2;", (Clause("read", ("bee",)),), "get(bee)", "ant=3;bee=2;", ("2",)
    )
    episode = Episode((ADD_THEN_READ, read_bee))
    assert score_episode(episode, ["add(bee,2);get(bee)", "get(bee)"]).success
    wrong_first = score_episode(episode, ["add(bee,3);get(bee)", "get(bee)"])
    assert [turn.passed for turn in wrong_first.turns] == [False, False]  # bee stays 3 in turn two
    assert format_state(wrong_first.turns[1].model_state) == "ant=3;bee=3;"
    assert score_episode([REFUSAL], ["get(ant)"]).hallucinated
    with raises_exactly("invalid score_episode.outputs='<1 outputs>': expected one output per turn (2)"):
        score_episode(episode, ["get(bee)"])


@pytest.mark.parametrize(
    "successes, n, k, expected",
    [
        ([2], 4, 1, 0.5),
        ([2], 4, 2, 1 / 6),
        ([4], 4, 3, 1.0),
        ([4], 4, 4, 1.0),
        ([1], 4, 2, 0.0),
        ([4, 0], 4, 1, 0.5),
        ([3, 2], 4, 2, (3 / 6 + 1 / 6) / 2),
    ],
)
def test_pass_hat_k_hand_counts(successes, n, k, expected):
    assert pass_hat_k(successes, n, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "successes, n, k, message",
    [
        ([1], 4, 0, "invalid pass_hat_k.k=0: expected an integer in [1, n=4]"),
        ([1], 4, 5, "invalid pass_hat_k.k=5: expected an integer in [1, n=4]"),
        ([1], 0, 1, "invalid pass_hat_k.n=0: expected an integer >= 1"),
        ([1, 5], 4, 1, "invalid pass_hat_k.successes_per_task[1]=5: expected an integer in [0, n=4]"),
        ([], 4, 1, "invalid pass_hat_k.successes_per_task=[]: expected at least one task"),
    ],
)
def test_pass_hat_k_refuses_bad_arguments(successes, n, k, message):
    with pytest.raises(ValueError) as caught:
        pass_hat_k(successes, n, k)
    assert str(caught.value) == message


# ---- SVS and baselines ----


class StubModel:
    """Fixed candidates and fixed predicted next states; remembers what it was asked."""

    def __init__(self, predictions, candidates=()):
        self.predictions, self.candidates = dict(predictions), tuple(candidates)
        self.sampled, self.asked = [], []

    def sample_calls(self, prompt, k):
        self.sampled.append((prompt, k))
        return self.candidates[:k]

    def predict_state(self, prompt, call):
        self.asked.append((prompt, call))
        return self.predictions[call]


PROMPT = "R:put 1 in ant|S:ant=0;|C:"
PREDICTIONS = {"set(ant,1)": "ant=1;", "add(ant,1)": "ant=1;", "get(ant)": "ant=0;", "del(ant)": ""}


def test_svs_acts_at_the_threshold_and_refuses_below_it():
    candidates = ["del(ant)", "set(ant,1)", "get(ant)", "add(ant,1)", "set(ant,1)"]  # 3 of 5 say ant=1;
    model = StubModel(PREDICTIONS)
    selection = svs_select(PROMPT, candidates, model.predict_state, tau=0.6)
    assert (selection.action, selection.chosen_index, selection.votes) == ("set(ant,1)", 1, 3)
    assert selection.support == 0.6 and not selection.refused
    assert model.asked == [(PROMPT, candidate) for candidate in candidates]
    below = svs_select(PROMPT, candidates, StubModel(PREDICTIONS).predict_state, tau=0.61)
    assert (below.action, below.chosen_index, below.votes, below.refused) == (NO_CALL, None, 3, True)


def test_svs_breaks_ties_by_first_occurrence():
    candidates = ["get(ant)", "set(ant,1)", "add(ant,1)", "get(ant)"]  # ant=0; and ant=1; both get 2 votes
    selection = svs_select(PROMPT, candidates, StubModel(PREDICTIONS).predict_state, tau=0.5)
    assert (selection.action, selection.chosen_index, selection.votes) == ("get(ant)", 0, 2)
    rotated = candidates[1:] + candidates[:1]  # now ant=1; occurs first
    later_first = svs_select(PROMPT, rotated, StubModel(PREDICTIONS).predict_state, tau=0.5)
    assert (later_first.action, later_first.chosen_index) == ("set(ant,1)", 0)
    assert svs_select(PROMPT, candidates, StubModel(PREDICTIONS).predict_state, tau=0.75).refused


def test_svs_does_not_ask_the_model_about_malformed_candidates():
    model = StubModel(PREDICTIONS)
    selection = svs_select(PROMPT, ["set(ant, 1)", "oops", "set(ant,1)"], model.predict_state, tau=0.3)
    assert (selection.action, selection.chosen_index, selection.votes) == ("set(ant,1)", 2, 1)
    assert model.asked == [(PROMPT, "set(ant,1)")]
    assert svs_select(PROMPT, ["set(ant, 1)", "oops"], model.predict_state, tau=0.01) == Selection(
        NO_CALL, None, 0, 2
    )


# The request is `put 1 in ant` on ant=0;, so ant=1; is the gold state. The stub's world model is wrong about
# add (it predicts no change), and one candidate is malformed.
STUB_CANDIDATES = ("get(ant)", "add(ant,1)", "set(ant,1)", "set(ant, 1)", "set(ant,1)")
WRONG_ABOUT_ADD = {"get(ant)": "ant=0;", "add(ant,1)": "ant=0;", "set(ant,1)": "ant=1;"}


@pytest.mark.parametrize(
    "method, tau, expected",
    [
        ("none", 0.4, Selection("get(ant)", 0, 1, 5)),
        # call strings: set(ant,1) x2 wins, get and add have 1 each, the malformed one abstains
        ("consistency", 0.4, Selection("set(ant,1)", 2, 2, 5)),
        # predicted states: ant=0; (get, add) ties ant=1; (set, set) at 2 votes; ant=0; occurs first
        ("internal", 0.4, Selection("get(ant)", 0, 2, 5)),
        # executed states: ant=1; from add, set, set (3 votes), first at index 1
        ("oracle", 0.4, Selection("add(ant,1)", 1, 3, 5)),
        ("none", 0.6, Selection("get(ant)", 0, 1, 5)),
        ("consistency", 0.6, Selection(NO_CALL, None, 2, 5)),
        ("internal", 0.6, Selection(NO_CALL, None, 2, 5)),
        ("oracle", 0.6, Selection("add(ant,1)", 1, 3, 5)),
    ],
)
def test_select_action_on_a_stub_model_by_hand(method, tau, expected):
    model = StubModel(WRONG_ABOUT_ADD, STUB_CANDIDATES)
    config = SelectionConfig(method=method, k=5, tau=tau)
    assert select_action(model, PROMPT, config, World(), parse_state("ant=0;")) == expected
    assert model.sampled == [(PROMPT, 5)]
    asked = [(PROMPT, call) for call in STUB_CANDIDATES if call != "set(ant, 1)"]
    assert model.asked == (asked if method == "internal" else [])


def test_select_action_with_fewer_samples():
    model = StubModel(WRONG_ABOUT_ADD, STUB_CANDIDATES)
    selection = select_action(model, PROMPT, SelectionConfig("internal", k=3, tau=0.5))
    assert selection == Selection("get(ant)", 0, 2, 3)  # get and add both predict ant=0;
    assert model.sampled == [(PROMPT, 3)]


def test_first_and_consistency_baselines():
    assert first_select(["del(ant)", "get(ant)"]) == Selection("del(ant)", 0, 1, 2)
    candidates = ["set(ant, 1)", "add(ant,1)", "set(ant,1)", "oops", "set(ant,1)"]  # malformed ones abstain
    voted = consistency_select(candidates, tau=0.4)
    assert (voted.action, voted.chosen_index, voted.votes) == ("set(ant,1)", 2, 2)
    assert consistency_select(candidates, tau=0.5).refused


def test_execution_oracle_votes_over_executed_states():
    state = parse_state("ant=2;bee=5;")
    candidates = ["get(dog)", "set(ant,4)", "add(ant,1)", "foo(ant)", "set(ant,3)"]
    selection = execution_oracle_select(candidates, World(), state, tau=0.4)
    assert (selection.action, selection.chosen_index, selection.votes) == ("add(ant,1)", 2, 2)  # ant=3;
    assert execution_oracle_select(candidates, World(), state, tau=0.5).refused
    all_fail = execution_oracle_select(["get(dog)", "foo(ant)", "set(ant"], World(), state, tau=0.1)
    assert (all_fail.action, all_fail.chosen_index, all_fail.votes) == (NO_CALL, None, 0)


def test_execution_oracle_never_acts_with_a_failing_call():
    tasks = make_split("train", 200, seed=4)
    acted = 0
    for index, task in enumerate(tasks):
        pool = [format_calls(other.gold_calls) for other in tasks[index + 1 : index + 5] if other.answerable]
        if task.unanswerable_reason in ("missing_key", "removed_tool"):  # the request as worded always fails
            worded = format_calls(intended_calls(task))
            assert execution_oracle_select([worded], task.world, task.initial_state, tau=1.0).refused
            pool.append(worded)
        selection = execution_oracle_select(pool or ["foo()"], task.world, task.initial_state, tau=0.01)
        if selection.chosen_index is not None:
            acted += 1
            _, observations = task.world.execute_all(task.initial_state, parse_calls(selection.action))
            assert not any(map(is_error, observations))
    assert 20 <= acted <= 180  # other tasks' programs mostly name keys this state lacks


@pytest.mark.parametrize(
    "task, candidates, action, chosen_index",
    [
        # set(bee,2) reaches the gold state but skips the read, so only indices 2 and 3 are correct
        (
            ADD_THEN_READ,
            ["add(bee,3);get(bee)", "set(bee,2)", "set(bee,2);get(bee)", "add(bee,2);get(bee)"],
            "set(bee,2);get(bee)",
            2,
        ),
        (ADD_THEN_READ, ["add(bee,3);get(bee)", "set(bee,2)", NO_CALL], NO_CALL, None),
        (REFUSAL, ["get(ant)", NO_CALL, "set(ant,3)"], NO_CALL, 1),
        (REFUSAL, ["get(ant)", "set(ant,3)"], NO_CALL, None),
    ],
)
def test_gold_oracle_never_acts_wrongly_and_refuses_only_without_a_correct_candidate(
    task, candidates, action, chosen_index
):
    selection = gold_oracle_select(candidates, task, tau=0.01)
    assert (selection.action, selection.chosen_index) == (action, chosen_index)
    correct = [score_turn(task, candidate).passed for candidate in candidates]
    assert (selection.chosen_index is None) == (not any(correct))
    assert selection.chosen_index is None or correct[selection.chosen_index]


def reaches_gold(task, candidate):
    """Apart from score_turn: gold state reached, gold reads a sub-multiset, no calls on a refusal."""
    try:
        calls = parse_calls(candidate)
    except MalformedCallError:
        return False
    state, observations = task.world.execute_all(task.initial_state, calls)
    reads = Counter(o for call, o in zip(calls, observations, strict=True) if call.tool == "get")
    return (
        state == task.gold_state
        and Counter(task.gold_reads) <= reads
        and (bool(task.gold_calls) or not calls)
    )


def test_gold_oracle_on_generated_tasks():
    rng = random.Random(7)
    tasks = make_split("train", 300, seed=8) + make_split("test_keys", 100, seed=8)
    refused = acted = 0
    for index, task in enumerate(tasks):
        gold = format_calls(task.gold_calls)
        options = [
            gold,
            NO_CALL,
            format_calls(task.gold_calls[:-1]),
            format_calls(tasks[index - 1].gold_calls),
            format_calls(intended_calls(task)) if task.unanswerable_reason != "missing_value" else "x(",
            gold.replace(")", ",1)", 1),
            "set(ant",
        ]
        candidates = [option for option in options if rng.random() < 0.4] or ["set(ant"]
        selection = gold_oracle_select(candidates, task, tau=1 / len(candidates))
        correct = [reaches_gold(task, candidate) for candidate in candidates]
        assert (selection.chosen_index is None) == (not any(correct))
        assert selection.chosen_index is None or correct[selection.chosen_index]
        refused += selection.chosen_index is None
        acted += selection.chosen_index is not None
    assert refused >= 50 and acted >= 50


@pytest.mark.parametrize(
    "select, message",
    [
        (
            lambda: svs_select(PROMPT, [], StubModel(PREDICTIONS).predict_state, tau=0.5),
            "invalid svs.k=0: expected an integer >= 1",
        ),
        (
            lambda: svs_select(PROMPT, ["get(ant)"], StubModel(PREDICTIONS).predict_state, tau=0),
            "invalid svs.tau=0: expected a number in (0, 1]",
        ),
        (
            lambda: svs_select(PROMPT, ["get(ant)"], StubModel(PREDICTIONS).predict_state, tau=1.5),
            "invalid svs.tau=1.5: expected a number in (0, 1]",
        ),
        (
            lambda: svs_select(PROMPT, ["get(ant)"], lambda prompt, call: None, tau=1),
            "invalid svs.predicted_state[0]=None: expected a string",
        ),
        (lambda: consistency_select([], tau=0.5), "invalid consistency.k=0: expected an integer >= 1"),
        (
            lambda: execution_oracle_select(["get(ant)"], World(), State(), tau=-0.1),
            "invalid oracle.tau=-0.1: expected a number in (0, 1]",
        ),
        (lambda: first_select([]), "invalid first.k=0: expected an integer >= 1"),
        (lambda: SelectionConfig(k=0), "invalid SelectionConfig.k=0: expected an integer >= 1"),
        (lambda: SelectionConfig(k=2.0), "invalid SelectionConfig.k=2.0: expected an integer >= 1"),
        (lambda: SelectionConfig(tau=0), "invalid SelectionConfig.tau=0: expected a number in (0, 1]"),
        (lambda: SelectionConfig(tau=1.01), "invalid SelectionConfig.tau=1.01: expected a number in (0, 1]"),
        (lambda: SelectionConfig(tau=True), "invalid SelectionConfig.tau=True: expected a number in (0, 1]"),
        (
            lambda: SelectionConfig(method="vote"),
            "invalid SelectionConfig.method='vote': expected one of none, consistency, internal, oracle",
        ),
        (
            lambda: select_action(StubModel(PREDICTIONS, STUB_CANDIDATES[:3]), PROMPT, SelectionConfig(k=5)),
            "invalid sample_calls.candidates='<3 candidates>': expected exactly k=5 call texts",
        ),
        (
            lambda: select_action(
                StubModel(PREDICTIONS, STUB_CANDIDATES), PROMPT, SelectionConfig("oracle", k=2)
            ),
            "invalid select_action.world=None: expected a World and a State for method='oracle'",
        ),
    ],
)
def test_bad_inputs_give_one_line_errors(select, message):
    with pytest.raises(ValueError) as caught:
        select()
    assert str(caught.value) == message
