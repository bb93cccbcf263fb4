"""Plain-Python base of a tool-use study: a slot world, a call grammar, templated tasks, scoring and SVS.

For world-model experiments in the manner of DyMo (arXiv 2506.02918); no JAX or numpy is needed here.
"""

from jaxrl_suite.tooluse.fields import (
    FIELD_WIDTHS,
    FieldWidths,
    check_field_widths,
    format_reads,
    pad_field,
    required_field_widths,
    task_fields,
)
from jaxrl_suite.tooluse.grammar import (
    NO_CALL,
    Call,
    MalformedCallError,
    format_call,
    format_calls,
    parse_call,
    parse_calls,
)
from jaxrl_suite.tooluse.scoring import (
    EpisodeScore,
    TurnScore,
    hallucination_rate,
    pass_hat_k,
    score_episode,
    score_turn,
    success_rate,
)
from jaxrl_suite.tooluse.svs import (
    Selection,
    consistency_select,
    execution_oracle_select,
    first_select,
    gold_oracle_select,
    svs_select,
    vote,
)
from jaxrl_suite.tooluse.tasks import (
    SPLITS,
    UNANSWERABLE_FRACTION,
    UNANSWERABLE_REASONS,
    Episode,
    Task,
    make_episodes,
    make_split,
)
from jaxrl_suite.tooluse.templates import RESERVED_COMPOSITIONS, TEMPLATES, Clause, ClauseTemplate
from jaxrl_suite.tooluse.world import (
    ALL_TOOLS,
    HELD_OUT_KEYS,
    KEY_POOL,
    READ_TOOLS,
    TOOL_PARAMETERS,
    TRAIN_KEYS,
    VALUE_MODULUS,
    WRITE_TOOLS,
    State,
    World,
    format_state,
    format_tools,
    is_error,
    parse_state,
)

__all__ = [
    "ALL_TOOLS", "FIELD_WIDTHS", "HELD_OUT_KEYS", "KEY_POOL", "NO_CALL", "READ_TOOLS",
    "RESERVED_COMPOSITIONS", "SPLITS", "TEMPLATES", "TOOL_PARAMETERS", "TRAIN_KEYS", "UNANSWERABLE_FRACTION",
    "UNANSWERABLE_REASONS", "VALUE_MODULUS", "WRITE_TOOLS", "Call", "Clause", "ClauseTemplate", "Episode",
    "EpisodeScore", "FieldWidths", "MalformedCallError", "Selection", "State", "Task", "TurnScore", "World",
    "check_field_widths", "consistency_select", "execution_oracle_select", "first_select", "format_call",
    "format_calls", "format_reads", "format_state", "format_tools", "gold_oracle_select",
    "hallucination_rate", "is_error", "make_episodes", "make_split", "pad_field", "parse_call", "parse_calls",
    "parse_state", "pass_hat_k", "required_field_widths", "score_episode", "score_turn", "success_rate",
    "svs_select", "task_fields", "vote",
]
