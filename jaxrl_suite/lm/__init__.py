"""The language-model side: byte-level stdlib corpus, training, evaluations, ACP report and `jaxrl lm` commands.

Trains the FoX / FoX-Pro / Transformer models of jaxrl_suite.models (Forgetting Transformer, arXiv 2503.02130).
"""

from jaxrl_suite.lm.data import END_OF_DOCUMENT, VOCAB_SIZE, Corpus, PackedStream, decode, encode
from jaxrl_suite.lm.train import LMRunResult, TrainConfig, load_params, read_run_config, resume_lm, train_lm

__all__ = [
    "END_OF_DOCUMENT", "VOCAB_SIZE", "Corpus", "LMRunResult", "PackedStream", "TrainConfig", "decode", "encode",
    "load_params", "read_run_config", "resume_lm", "train_lm",
]
