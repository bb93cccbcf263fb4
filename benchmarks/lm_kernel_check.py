"""Accelerator check of the language models: cached decoding and the default kernel against the dense reference.

Then, for each model preset named, the training throughput at a 2048-byte context in bf16 (30 steps).
    python benchmarks/lm_kernel_check.py [fox-pro-125m transformer-125m ...] [--out results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jaxrl_suite.lm.train import TrainConfig, train_lm  # noqa: E402
from jaxrl_suite.models import LanguageModel, generate, init_params, model_config  # noqa: E402


def decoding_errors(dtype: str) -> dict[str, float]:
    """Max |logit| differences: cached decoding vs full forward, default kernel vs dense reference."""
    config = model_config("fox-pro-tiny", compute_dtype=dtype)
    params = init_params(config, jax.random.PRNGKey(0))
    prompt = jax.random.randint(jax.random.PRNGKey(1), (2, 40), 0, config.vocab_size)
    generated = generate(params, config, prompt, 24, jax.random.PRNGKey(2))
    tokens = jnp.concatenate([prompt, generated.tokens], axis=1)

    def forward(model):
        return jax.jit(lambda p, t: LanguageModel(model).apply({"params": p}, t))(params, tokens)

    full = forward(config)
    reference = forward(dataclasses.replace(config, attention_impl="reference"))
    return {f"cache_vs_full_{dtype}": float(jnp.abs(full[:, 39:-1] - generated.logits).max()),
            f"default_kernel_vs_reference_{dtype}": float(jnp.abs(full - reference).max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--out", default="")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    results: dict = {"jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}
    for dtype in ("float32", "bfloat16"):
        results.update(decoding_errors(dtype))
        print(results, flush=True)
    for name in args.models:
        config = TrainConfig(model=name, sequence_length=2048, batch_size=32, steps=args.steps, warmup_steps=3,
                             compute_dtype="bfloat16", log_every=10, eval_every=-1, progress=False,
                             tensorboard=False)
        start = time.monotonic()
        run = train_lm(config, f"/tmp/lm_kernel_check/{name}", overwrite=True)
        results[name] = {"seconds_with_compile": time.monotonic() - start,
                         "tokens_per_s": [r["tokens_per_s"] for r in run.records]}
        print(name, results[name], flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
