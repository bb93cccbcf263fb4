"""Bias shift in unconditional generation (arXiv 2506.09106): train a flow-matching generator on split A,
then the oracle shift table with bootstrap CIs and BH, the noise floor P_B' - P_B, and per-classifier shifts;
also W1/KS/MMD^2 on the oracle attributes (generated vs A, B' vs B) and the shift's sensitivity against KDE density.

Only the smoke preset exists: a wiring check of every output on a generator trained for seconds, no claim.
Run: python experiments/bias_shift.py --preset smoke [--data shapes16|digits] [--prediction x|v] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxrl_suite.bias_shift import attributes, classifiers, data, distances, generator, sensitivity, shift  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Preset:
    """Splits per data set, the generator, how many samples it draws, and the classifier grid."""

    sizes: dict
    flow: generator.FlowConfig
    num_generated: int
    table_attributes: dict
    """Per data set. Digits leave out brightness (nearly every digit has a full-intensity pixel) and
    use shear for slant (an upright digit's major axis sits near +-pi/2, where `slant` wraps)."""
    classifier_attributes: dict
    classifier_quantiles: tuple[int, ...]
    num_resamples: int = 2000
    distance_resamples: int = 200


PRESETS = {
    "smoke": Preset(
        sizes={"shapes16": data.SplitSizes(A=2000, C=1000, B=1000, B_prime=1000),
               "digits": data.SplitSizes(A=900, C=400, B=250, B_prime=247)},
        flow=generator.FlowConfig(width=256, depth=3, train_steps=1500),
        num_generated=1000,
        table_attributes={"shapes16": attributes.ATTRIBUTES,
                          "digits": ("ink_mass", "size", "shear", "thickness", "shape_score")},
        classifier_attributes={"shapes16": ("brightness", "shape_score", "size", "thickness", "slant"),
                               "digits": ("shape_score", "size", "thickness", "shear")},
        classifier_quantiles=(25, 50, 75)),
}


def classifier_rows(dataset, train_images, generated, preset: Preset, seed: int) -> list[dict]:
    """Per attribute x threshold x classifier: accuracy on B, measured shift with CI, decomposition."""
    rows = []
    for name in preset.classifier_attributes[dataset.name]:
        reference = attributes.MEASURES[name](dataset.images["B"])
        for quantile, threshold in zip(preset.classifier_quantiles,
                                       shift.quantile_thresholds(reference, preset.classifier_quantiles), strict=True):
            oracle = classifiers.train_classifier("oracle", name, float(threshold), dataset.images["C"])
            for kind in classifiers.CLASSIFIERS:
                model = classifiers.train_classifier(kind, name, float(threshold), dataset.images["C"], seed=seed)
                estimate = shift.shift_from_labels(model.predict(train_images), model.predict(generated),
                                                   preset.num_resamples, seed)
                parts = shift.decompose(oracle.predict(train_images), oracle.predict(generated),
                                        model.predict(train_images), model.predict(generated))
                rows.append({"attribute": name, "quantile": quantile, "threshold": float(threshold), "classifier": kind,
                             "accuracy_B": classifiers.accuracy(model, dataset.images["B"]),
                             **dataclasses.asdict(estimate), **dataclasses.asdict(parts)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    parser.add_argument("--data", choices=data.DATASETS, default="shapes16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prediction", choices=generator.PREDICTIONS, default="x", help="what the flow MLP predicts")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    out = args.out or pathlib.Path("runs") / f"bias_shift_{args.preset}_{args.data}_{args.prediction}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    dataset = data.load_dataset(args.data, preset.sizes[args.data], seed=args.seed)
    train_images = dataset.images["A"]
    flow = dataclasses.replace(preset.flow, seed=args.seed, prediction=args.prediction)
    model, params, losses = generator.train_flow(train_images, flow)
    trained = time.time()
    generated = generator.sample_flow(model, params, preset.num_generated, train_images.shape[1], flow.sample_steps, args.seed)

    names = preset.table_attributes[args.data]
    measured = {split: attributes.measure(images, names) for split, images in {**dataset.images, "generated": generated}.items()}
    oracle_table = shift.shift_table(measured["A"], measured["generated"], measured["B"], num_resamples=preset.num_resamples,
                                     seed=args.seed)
    noise_floor = shift.shift_table(measured["B"], measured["B_prime"], measured["B"], num_resamples=preset.num_resamples,
                                    seed=args.seed)
    classifier_table = classifier_rows(dataset, train_images, generated, preset, args.seed)
    analysis_started = time.time()
    quality = {pair: distances.attribute_distances(measured[a], measured[b], preset.distance_resamples, args.seed,
                                                           method="basic")
               for pair, (a, b) in {"generated_vs_A": ("A", "generated"), "B_prime_vs_B": ("B", "B_prime")}.items()}
    reference = {name: attributes.MEASURES[name](dataset.images["B"]) for name in preset.classifier_attributes[args.data]}
    density_table = sensitivity.sensitivity_vs_density(classifier_table, reference)
    oracle_slopes = [{"attribute": name, **dataclasses.asdict(row)} for name in names
                     for row in sensitivity.threshold_sensitivity(measured["A"][name], measured["generated"][name],
                                                                  shift.quantile_thresholds(measured["B"][name]),
                                                                  reference_scores=measured["B"][name])]
    analysis_seconds = time.time() - analysis_started
    summary = {
        "preset": args.preset, "data": args.data, "seed": args.seed, "flow": dataclasses.asdict(flow),
        "train_seconds": trained - started, "total_seconds": time.time() - started,
        "loss_first_50": float(losses[:50].mean()), "loss_last_100": float(losses[-100:].mean()),
        "attribute_means": {split: {k: float(v.mean()) for k, v in values.items()} for split, values in measured.items()},
        "max_abs_oracle_shift": {a: max(abs(r["shift"]) for r in oracle_table if r["attribute"] == a) for a in measured["A"]},
        "max_abs_noise_floor": {a: max(abs(r["shift"]) for r in noise_floor if r["attribute"] == a) for a in measured["A"]},
        "oracle_significant": sum(r["significant"] for r in oracle_table),
        "noise_floor_significant": sum(r["significant"] for r in noise_floor),
        "analysis_seconds": analysis_seconds,
        "w1": {pair: {a: table[a]["w1"]["value"] for a in names} for pair, table in quality.items()},
        "ks": {pair: {a: table[a]["ks"]["value"] for a in names} for pair, table in quality.items()},
        "mmd2_joint": {pair: table["mmd2_joint"]["value"] for pair, table in quality.items()},
        "spearman_density_vs_classifier_spread": sensitivity.rank_correlation(density_table),
    }
    for name, payload in (("summary", summary), ("oracle_shift", oracle_table), ("noise_floor", noise_floor),
                          ("classifier_shift", classifier_table), ("quality", quality),
                          ("sensitivity_vs_density", density_table), ("oracle_threshold_sensitivity", oracle_slopes)):
        (out / f"{name}.json").write_text(json.dumps(payload, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"{'attribute':12s} {'q':>3s} {'clf':7s} {'acc_B':>6s} {'measured':>9s} {'true':>7s} {'clf_part':>8s}")
    for row in classifier_table:
        print(f"{row['attribute']:12s} {row['quantile']:3d} {row['classifier']:7s} {row['accuracy_B']:6.3f} "
              f"{row['measured']:9.4f} {row['true']:7.4f} {row['classifier_part']:8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
