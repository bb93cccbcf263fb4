"""`jaxrl lm ...`: train, evaluate and sample the byte-level language models (FoX, FoX-Pro, Transformer).

Entry point `lm_main(argv)`; every TrainConfig / EvalConfig field is a flag (`jaxrl lm train --help`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

USAGE = """usage: jaxrl lm COMMAND ...

commands:
  train --model NAME [--out DIR] [flags]   train a language model (--help lists every flag)
  train --resume DIR                       continue an interrupted run exactly
  eval DIR [flags]                         validation loss, per-position loss, extrapolation, needle, ACP
  generate DIR --prompt TEXT [--tokens N]  sample a continuation with the KV cache
  models                                   list the model presets and their parameter counts
  sft --task bow [--out DIR] [flags]       supervised fine-tuning on the noisy teacher (bag-of-words task)
  dpo --sft DIR --algo dpo|rloo|best-of-2 --off-policy-n N --mode sync|async [--max-staleness S] [--out DIR]
                                           online RLHF from an SFT run (asynchronous off-policy online DPO)
  dpo --resume DIR                         continue an interrupted online RLHF run exactly
"""


def _train_args_class() -> type:
    """Flags of `jaxrl lm train`: --out, --overwrite, --resume and every TrainConfig field."""
    from jaxrl_suite.lm.train import TrainConfig

    return dataclasses.make_dataclass("TrainArgs", [
        ("out", str, dataclasses.field(default="")),
        ("overwrite", bool, dataclasses.field(default=False)),
        ("resume", str, dataclasses.field(default="")),
        ("train", TrainConfig, dataclasses.field(default_factory=TrainConfig)),
    ], frozen=True)


def train_command(argv: Sequence[str]) -> int:
    import tyro

    from jaxrl_suite.lm.train import resume_lm, train_lm

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--resume", default="")
    known, _ = pre.parse_known_args(argv)
    if known.resume:
        result = resume_lm(known.resume)
    else:
        args = tyro.cli(_train_args_class(), args=list(argv), prog="jaxrl lm train",
                        config=(tyro.conf.OmitArgPrefixes,))
        config = args.train.validate()
        out = args.out or f"runs/lm-{config.model}-s{config.seed}"
        print(f"training {config.model} for {config.steps:,} steps x {config.tokens_per_step:,} tokens -> {out}")
        result = train_lm(config, out, overwrite=args.overwrite)
    last = result.records[-1] if result.records else {}
    print(f"done: {last.get('tokens', 0):,} tokens; loss={last.get('loss')} val_loss={last.get('val_loss')}")
    print(f"outputs in {result.run_dir}: config.json metrics.jsonl checkpoints/ learning_curve.png")
    return 0


def eval_command(argv: Sequence[str]) -> int:
    import tyro

    from jaxrl_suite.lm.report import EvalConfig, evaluate_run

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("run_dir", nargs="?")
    known, rest = pre.parse_known_args(argv)
    if not known.run_dir or known.run_dir.startswith("-"):
        print("usage: jaxrl lm eval DIR [flags]   (--help after DIR lists the flags)", file=sys.stderr)
        return 2
    config = tyro.cli(EvalConfig, args=rest, prog=f"jaxrl lm eval {known.run_dir}")
    result = evaluate_run(known.run_dir, config)
    print(f"{result['model']} after {result['tokens']:,} tokens (train length {result['train_length']}):")
    print(f"  validation loss {result['validation_loss']:.4f} nats/byte")
    for key in ("loss_1x", "loss_2x", "loss_4x", "loss_positions_1x_to_2x", "loss_positions_2x_to_4x"):
        if key in result:
            print(f"  {key}: {result[key]:.4f}")
    needle = result["needle"]
    for length, row in zip(needle["context_lengths"], needle["exact"], strict=True):
        print(f"  needle exact match at {length} tokens: {sum(row) / len(row):.2f} (per depth {row})")
    if "acp" in result:
        acp = result["acp"]
        print(f"  ACP eps={acp['acp_eps']:.2e}: {acp['mean_tile_fraction_skipped']:.1%} of tiles skipped, "
              f"loss change {acp['loss_change']:+.2e}")
    print(f"outputs in {known.run_dir}: eval.json per_position_loss.png needle.png"
          + (" acp.json" if "acp" in result else ""))
    return 0


def generate_command(argv: Sequence[str]) -> int:
    import jax
    import jax.numpy as jnp

    from jaxrl_suite.lm.data import decode, encode
    from jaxrl_suite.lm.train import load_params
    from jaxrl_suite.models import generate

    parser = argparse.ArgumentParser(prog="jaxrl lm generate", description="sample from a trained LM run")
    parser.add_argument("run_dir")
    parser.add_argument("--prompt", default="def ")
    parser.add_argument("--tokens", type=int, default=200, help="bytes to generate")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.prompt:
        raise ValueError("invalid generate.prompt='': expected at least one character")
    model, params, _ = load_params(args.run_dir)
    prompt = jnp.asarray(encode(args.prompt))[None]
    result = generate(params, model, prompt, args.tokens, jax.random.PRNGKey(args.seed), args.temperature)
    print(args.prompt + decode(result.tokens[0]))
    return 0


def sft_command(argv: Sequence[str]) -> int:
    import tyro

    from jaxrl_suite.lm.rlhf.sft import SFTConfig, train_sft

    args_class = dataclasses.make_dataclass("SFTArgs", [
        ("out", str, dataclasses.field(default="")),
        ("overwrite", bool, dataclasses.field(default=False)),
        ("sft", SFTConfig, dataclasses.field(default_factory=SFTConfig)),
    ], frozen=True)
    args = tyro.cli(args_class, args=list(argv), prog="jaxrl lm sft", config=(tyro.conf.OmitArgPrefixes,))
    config = args.sft.validate()
    out = args.out or f"runs/sft-{config.task}-s{config.seed}"
    print(f"SFT of {config.model} (d_model {config.d_model}) for {config.steps} steps on {config.task} -> {out}")
    last = train_sft(config, out, overwrite=args.overwrite)[-1]
    print(f"done: loss={last['loss']:.4f}; win rate vs the reference {last['win_rate']:.3f}, "
          f"gold score {last['gold_score']:.3f}, EOS rate {last['eos_rate']:.3f} "
          f"({config.eval_prompts} held-out prompts, T={config.temperature})")
    print(f"outputs in {out}: config.json metrics.jsonl checkpoints/")
    return 0


def dpo_command(argv: Sequence[str]) -> int:
    import tyro

    from jaxrl_suite.lm.rlhf.loop import OnlineConfig, check_online_run, read_online_config, run_online

    args_class = dataclasses.make_dataclass("DPOArgs", [
        ("sft", str, dataclasses.field(default="")),
        ("out", str, dataclasses.field(default="")),
        ("overwrite", bool, dataclasses.field(default=False)),
        ("resume", str, dataclasses.field(default="")),
        ("online", OnlineConfig, dataclasses.field(default_factory=OnlineConfig)),
    ], frozen=True)
    args = tyro.cli(args_class, args=list(argv), prog="jaxrl lm dpo", config=(tyro.conf.OmitArgPrefixes,))
    if args.resume:
        config, sft_dir = read_online_config(args.resume)
        out, resume = args.resume, True
    else:
        if not args.sft:
            raise ValueError("invalid dpo.sft='': expected an SFT run directory (config.json of kind 'sft', "
                             "written by `jaxrl lm sft`)")
        config, sft_dir, resume = args.online, args.sft, False
        out = args.out or f"runs/{config.algo}-n{config.off_policy_n}-{config.mode}-s{config.seed}"
    check_online_run(config, sft_dir, out, resume=resume, overwrite=args.overwrite)
    print(f"{config.algo} ({config.mode}, N={config.off_policy_n}, lag {config.lag}) for {config.episodes:,} "
          f"episodes from {sft_dir} -> {out}")
    from jaxrl_suite.runner import read_metrics

    run_online(config, sft_dir, out, resume=resume, overwrite=args.overwrite)
    last = read_metrics(out)[-1]
    print(f"done: {last['episodes']:,} episodes; win rate {last.get('win_rate')}, "
          f"KL to SFT {last.get('eval_kl_to_sft')}")
    print(f"outputs in {out}: config.json metrics.jsonl checkpoints/")
    return 0


def models_command(argv: Sequence[str]) -> int:
    import jax

    from jaxrl_suite.models import PRESETS, LanguageModel

    parser = argparse.ArgumentParser(prog="jaxrl lm models", description="list model presets")
    parser.parse_args(argv)
    for name, config in PRESETS.items():
        shapes = jax.eval_shape(LanguageModel(config).init, jax.random.PRNGKey(0), jax.numpy.zeros((1, 8), "int32"))
        count = sum(leaf.size for leaf in jax.tree.leaves(shapes))
        print(f"{name:24s} {count / 1e6:8.2f}M params  d={config.d_model} layers={config.num_layers} "
              f"heads={config.num_heads}")
    return 0


def lm_main(argv: Sequence[str] | None = None) -> int:
    """`jaxrl lm COMMAND ...`; returns the process exit code (2 with a one-line error for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    handlers = {"train": train_command, "eval": eval_command, "generate": generate_command,
                "models": models_command, "sft": sft_command, "dpo": dpo_command}
    command, rest = argv[0], argv[1:]
    if command not in handlers:
        print(f"unknown command {command!r}; valid: {', '.join(handlers)}\n\n{USAGE}", file=sys.stderr)
        return 2
    from jaxrl_suite.runner import CheckpointError, RunDirectoryError

    try:
        return handlers[command](rest)
    except (ValueError, RunDirectoryError, CheckpointError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(lm_main())
