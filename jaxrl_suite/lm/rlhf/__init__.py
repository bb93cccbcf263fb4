"""Online RLHF on byte-level language models (asynchronous online DPO, arXiv 2410.18252): task, losses, loops.

`task` (bag-of-words task, gold reward, noisy teacher), `losses`, `sft`, `sampling`, `updates` and `loop` (sync/async).
"""

from __future__ import annotations

from jaxrl_suite.lm.rlhf.losses import (
    DPOMetrics,
    chosen_and_rejected,
    dpo_loss,
    pair_by_gold_score,
    rloo_advantages,
    rloo_loss,
)
from jaxrl_suite.lm.rlhf.task import (
    PROMPT_WIDTH,
    RESPONSE_WIDTH,
    TEACHER_NOISE,
    TOP_K,
    WORDS,
    RewardTerms,
    gold_reward,
    ideal_response,
    ideal_words,
    make_prompts,
    make_sft_pairs,
    reward_terms,
    score_rows,
    teacher_response,
    teacher_responses,
    win_rate,
)

__all__ = [
    "PROMPT_WIDTH", "RESPONSE_WIDTH", "TEACHER_NOISE", "TOP_K", "WORDS", "DPOMetrics", "RewardTerms",
    "chosen_and_rejected", "dpo_loss", "gold_reward", "ideal_response", "ideal_words", "make_prompts",
    "make_sft_pairs", "pair_by_gold_score", "reward_terms", "rloo_advantages", "rloo_loss", "score_rows",
    "teacher_response", "teacher_responses", "win_rate",
]
