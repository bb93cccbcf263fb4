"""DyMo training rows: FC rows (request, tools, state -> call) and SP rows (... call -> next state), fixed width.

The two objectives of DyMo (arXiv 2506.02918) as prompt/response pairs for lm/finetune.py's encoders and masks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

from jaxrl_suite.lm.finetune import encode_rows, response_mask
from jaxrl_suite.tooluse.fields import FIELD_WIDTHS, FieldWidths, pad_field
from jaxrl_suite.tooluse.grammar import format_calls
from jaxrl_suite.tooluse.tasks import Task
from jaxrl_suite.tooluse.world import State, format_state, format_tools
from jaxrl_suite.validation import require

# The tool list is in the prompt (the layout has only R and S) because a `removed_tool` request is
# answerable or not depending on it; without it the refusal could not be learned.
REQUEST_MARK, TOOLS_MARK, STATE_MARK, CALL_MARK, NEXT_STATE_MARK = "R:", "|T:", "|S:", "|C:", "|N:"


def fc_prompt_width(widths: FieldWidths = FIELD_WIDTHS) -> int:
    """Characters (= tokens, the text is ASCII) of an FC prompt `R:<request>|T:<tools>|S:<state>|C:`."""
    return (len(REQUEST_MARK) + widths.request + len(TOOLS_MARK) + widths.tools + len(STATE_MARK)
            + widths.state + len(CALL_MARK))


def fc_response_width(widths: FieldWidths = FIELD_WIDTHS) -> int:
    """Tokens of an FC response: the call text, EOS, spaces; the longest call fills widths.calls."""
    return widths.calls + 1


def sp_prompt_width(widths: FieldWidths = FIELD_WIDTHS) -> int:
    """Characters of an SP prompt: the FC prompt, the call padded to widths.calls, then `|N:`."""
    return fc_prompt_width(widths) + widths.calls + len(NEXT_STATE_MARK)


def sp_response_width(widths: FieldWidths = FIELD_WIDTHS) -> int:
    """Tokens of an SP response: the next state's canonical text, EOS, spaces."""
    return widths.state + 1


def fc_prompt(request: str, available_tools: Iterable[str], state: State,
              widths: FieldWidths = FIELD_WIDTHS) -> str:
    """`R:<request>|T:<tools>|S:<state>|C:` with each field space-padded to its width (fc_prompt_width chars).

    Built from parts, not a Task, so a multi-turn evaluation can pass the state the model itself reached.
    """
    return (f"{REQUEST_MARK}{pad_field('request', request, widths)}"
            f"{TOOLS_MARK}{pad_field('tools', format_tools(available_tools), widths)}"
            f"{STATE_MARK}{pad_field('state', format_state(state), widths)}{CALL_MARK}")


def sp_prompt(fc_prompt_text: str, call: str, widths: FieldWidths = FIELD_WIDTHS) -> str:
    """`<FC prompt><call padded to widths.calls>|N:`: the prompt whose continuation is the next state."""
    width = fc_prompt_width(widths)
    require(len(fc_prompt_text) == width and fc_prompt_text.endswith(CALL_MARK), "sp_prompt", "fc_prompt",
            fc_prompt_text, f"an FC prompt of {width} characters ending {CALL_MARK!r} (rows.fc_prompt)")
    return f"{fc_prompt_text}{pad_field('calls', call, widths)}{NEXT_STATE_MARK}"


def task_prompt(task: Task, widths: FieldWidths = FIELD_WIDTHS) -> str:
    """The FC prompt of a task on its initial state."""
    return fc_prompt(task.request, task.available_tools, task.initial_state, widths)


def fc_pair(task: Task, widths: FieldWidths = FIELD_WIDTHS) -> tuple[str, str]:
    """(FC prompt, gold call text): the gold program, or `<no_call>` for an unanswerable request."""
    gold_calls = format_calls(task.gold_calls)
    pad_field("calls", gold_calls, widths)  # refuses a gold program wider than its field
    return task_prompt(task, widths), gold_calls


def sp_pair(task: Task, widths: FieldWidths = FIELD_WIDTHS) -> tuple[str, str]:
    """(SP prompt, gold next state text): the state the gold call reaches (unchanged after `<no_call>`)."""
    prompt, gold_calls = fc_pair(task, widths)
    gold_state = format_state(task.gold_state)
    pad_field("state", gold_state, widths)
    return sp_prompt(prompt, gold_calls, widths), gold_state


@dataclasses.dataclass(frozen=True)
class Rows:
    """Encoded rows of one kind. tokens: int32 [num_rows, prompt_width + response_width]; mask: bool, same
    shape, True on the target field only (the response bytes and its EOS, lm.finetune.response_mask)."""

    tokens: np.ndarray
    mask: np.ndarray
    prompt_width: int

    @property
    def target_tokens(self) -> int:
        return int(self.mask.sum())


def _encode(pairs: Sequence[tuple[str, str]], prompt_width: int, response_width: int) -> Rows:
    tokens = encode_rows(pairs, prompt_width, response_width)
    return Rows(tokens, np.asarray(response_mask(tokens, prompt_width)), prompt_width)


def encode_fc_rows(tasks: Sequence[Task], widths: FieldWidths = FIELD_WIDTHS) -> Rows:
    """One FC row per task, in order: the prompt, then the gold call text, EOS and spaces."""
    require(len(tasks) >= 1, "rows", "tasks", len(tasks), "at least one task")
    return _encode([fc_pair(task, widths) for task in tasks], fc_prompt_width(widths), fc_response_width(widths))


def encode_sp_rows(tasks: Sequence[Task], widths: FieldWidths = FIELD_WIDTHS) -> Rows:
    """One SP row per task, in order: the prompt with the gold call, then the gold next state, EOS, spaces."""
    require(len(tasks) >= 1, "rows", "tasks", len(tasks), "at least one task")
    return _encode([sp_pair(task, widths) for task in tasks], sp_prompt_width(widths), sp_response_width(widths))
