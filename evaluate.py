"""Offline quality suite: measure runs with an independent judge and the in-domain encoder.

    python evaluate.py --run RUN --judge-only --out judge.json   # the judge and colour alone
    python evaluate.py --run RUN [--encoder ENC] [--split test|train] --out report.json
                       [--compare OTHER_RUN ...] [--no-gate] [--style varied|none]
    python evaluate.py train-encoder [--data MANIFEST] --out ENC     # the in-domain evaluator
    python evaluate.py train-judge [--data MANIFEST] --out JUDGE     # (one ships in models/judge)
    python evaluate.py shop [--run RUN] --out reports/shop.json      # shop-language benchmark

The independent judge (judge.py, read by judging.py) never trained with any generator: its
figures are the ones to read a model by. The in-domain metrics, in the space of the dual
encoder whose family, data and training the GAN's text encoder shares (so they overstate):
R-precision (top-1 of a prompt among 99 of other concepts, AttnGAN's protocol); FID and KID
on the encoder's pooled image features (true FID with `--inception-weights`); diversity
(mean pairwise distance of unit features among one prompt's images). Colour accuracy (no
encoder): "red dress" / "红色连衣裙" in every palette colour for the recolourable rows; the
dominant colour of the product's pixels must be the prompt's. Each run ungated and gated,
drawn as generate.py draws (`--style varied`) or as typed. Reference rows: real images (the
ceiling) and real images with shuffled prompts (the floor). Writes report.json, .md, .png.
"""

import argparse
import os
import sys
import time

import numpy as np

from adgan.data import bundles, colors
from adgan.data.styles import NONE, VARIED
from adgan.drawing.sampling import draw_prompts
from adgan.evaluation import judge as judge_model, shop
from adgan.evaluation.evaluation_report import (format_bundle_table, format_color_table,
                                                format_judge_table, format_table, write_report)
from adgan.evaluation.judge import DEFAULT_JUDGE
from adgan.evaluation.judging import JUDGE_GROUPS, judge_report, judge_runs
from adgan.evaluation.metrics import (InceptionFeatures, color_scores, distance_features,
                                      diversity, frechet_distance, kernel_inception_distance,
                                      r_precision, two_object_rate)
from adgan.helpers import run_command, split_list, to_float
from adgan.runs.layout import load_config
from adgan.runs.rows import manifest_rows
from adgan.runs.run import Run
from adgan.text import encoder as dual_encoder
import data_loader
from generate import PANEL_PROMPTS


def evaluation_set(config, split, caption_columns):
    """Real rows of a run's manifest and groups in `split`, as prompts and images.

    Returns (prompts [P], prompt_concept [P], real_images uint8 [R, S, S, 3],
    real_prompts: list of prompt-index lists, one per real image). A concept is a
    row's first caption (e.g. its English name); its captions in `caption_columns`
    are its prompts.
    """
    rows, _ = manifest_rows(config, split, caption_columns)
    prompts, concept_of, index = [], [], {}
    real_prompts = []
    for captions in rows["captions"]:
        for caption in captions:
            if caption not in index:
                index[caption] = len(prompts)
                prompts.append(caption)
                concept_of.append(captions[0])
        real_prompts.append([index[c] for c in captions])
    images = np.stack([data_loader.load_image(p, config.image_size) for p in rows["path"]])
    return prompts, np.array(concept_of), images, real_prompts


def score_set(encoder, images, true_prompt, groups, prompt_vectors, prompt_concept,
              real_features, repeats, seed):
    """Every metric of one set of images."""
    features, codes = encoder.embed_images(to_float(images))
    features = distance_features(features)
    mean, std = r_precision(codes, true_prompt, prompt_vectors, prompt_concept,
                            repeats=repeats, seed=seed)
    row = {"images": len(images), "r_precision": mean, "r_precision_std": std,
           "diversity": diversity(features, groups)}
    if real_features is not None:
        row["fid_in_domain"] = frechet_distance(features, real_features)
        row["kid_in_domain"], row["kid_in_domain_std"] = kernel_inception_distance(
            features, real_features, seed=seed)
    return row


def generated_rows(run, prompts, per_prompt, max_tries, seed, style=VARIED, compose=False):
    """(label, images [P, K, ...], row extras) for an opened `Run`: ungated, and gated unless
    it was opened with `gated=False` (an uncalibrated run is a `RunError` otherwise). With
    `style` "varied" the draws vary the style as generate.py's do; "none" draws prompts as
    given. With `compose`, bundle prompts are drawn product by product (composition.py), as
    generate.py draws them; else in one pass. Every call with the same run, style and
    `compose` draws with one sampler (`Run.sampler`: its graph is traced once)."""
    name = run.name + (" composed" if compose else "")
    sampler = run.sampler(style, compose)
    started = time.time()
    plain = draw_prompts(sampler, prompts, per_prompt, seed, 1)
    rows = [(f"{name} (ungated)", plain, {"seconds": round(time.time() - started, 1)})]
    if run.gated:
        gamma = run.calibration["gamma"]
        started = time.time()
        result = draw_prompts(sampler, prompts, per_prompt, seed, max_tries)
        rows.append((f"{name} (gated: DRS, gamma {gamma}, {max_tries} tries)",
                     result, {"seconds": round(time.time() - started, 1),
                              "accepted": float(result["accepted"].mean()),
                              "acceptance_rate": float(result["accepted"].sum()
                                                       / result["tries"].sum()),
                              "tries_per_image": float(result["tries"].mean())}))
    return rows


def color_set(config, split, caption_columns):
    """Colour prompts of a run's recolourable rows in `split`, or None if it has none.

    Each concept's captions in `caption_columns` ("dress", "连衣裙") are prefixed with
    every palette colour ("red dress", "红色连衣裙"). Returns (prompts [P], target
    colour index [P], real recoloured images uint8 [R, S, S, 3], their colours [R]).
    """
    try:
        rows, _ = manifest_rows(config, split, caption_columns, mark_recolorable=True)
    except data_loader.ManifestError:
        return None
    rows = rows[rows["recolorable"]]
    if rows.empty:
        return None
    names = list(dict.fromkeys(c for captions in rows["captions"] for c in captions))
    palette = range(len(colors.PALETTE))
    prompts = [colors.color_prompt(name, k) for name in names for k in palette]
    targets = np.array([k for _ in names for k in palette])
    real, real_targets = [], []
    for path in rows["path"]:
        rgba = data_loader.load_image_rgba(path, config.image_size)
        real += [colors.recolor(rgba, k).numpy() for k in palette]
        real_targets += list(palette)
    return prompts, targets, np.stack(real), np.array(real_targets)


def color_accuracy(config, split, caption_columns, runs, sampling):
    """({"color": the colour section of a report}, {"color": its pictures: ({label: uint8
    [P, K, S, S, 3]}, the prompts)}); two empty dicts when the split has nothing to recolour.

    runs: the opened `Run`s; sampling: `generated_rows`' keyword arguments (per_prompt,
    max_tries, seed, style).
    """
    found = color_set(config, split, caption_columns)
    if found is None:
        return {}, {}
    prompts, targets, real, real_targets = found
    section = {"prompts": len(prompts), "colors": list(colors.COLOR_NAMES),
               "chance": 1.0 / len(colors.PALETTE),
               "rows": {"real images, recoloured (ceiling)": color_scores(real, real_targets)}}
    pictures = {}
    for run in runs:
        for label, result, extras in generated_rows(run, prompts, **sampling):
            images = result["images"].reshape(-1, *result["images"].shape[2:])
            section["rows"][label] = {
                **color_scores(images, np.repeat(targets, sampling["per_prompt"])),
                **{k: v for k, v in extras.items() if k != "seconds"}}
            pictures[label] = result["images"]
    return {"color": section}, {"color": (prompts, pictures)}


def two_objects(encoder, images, pairs, concept_vectors, seed):
    """`two_object_rate` of uint8 pictures [N, S, S, 3] of concept pairs [N, 2]: the
    evaluator reads each half (`bundles.halves`)."""
    cut = bundles.halves(images)
    codes = encoder.embed_images(to_float(cut.reshape(-1, *cut.shape[2:])))[1]
    return {"two_object_rate": two_object_rate(codes.reshape(len(images), 2, -1), pairs,
                                               concept_vectors, seed=seed),
            "images": len(images)}


def bundle_section(config, split, runs, encoder, sampling, count):
    """The two-object section: for `count` seen and `count` held-out concept pairs
    (`bundles.evaluation_pairs`), each named in Chinese and English, the share of pictures
    whose halves show both products: real side-by-side composites (the ceiling), the
    first product's real picture alone (must fail), and each run's draws in one pass and
    composed product by product (composition.py)."""
    rows, _ = manifest_rows(config, split, config.caption_columns[:2])
    names_en, names_zh = data_loader.names_by_language(rows)
    concepts = np.array([e or z for e, z in zip(names_en, names_zh)], dtype=object)
    unique, concept_index = np.unique(concepts, return_inverse=True)
    vectors = encoder.embed_texts(list(unique))
    rng = np.random.default_rng(sampling["seed"])
    section = {"candidates": int(min(100, len(unique))), "pairs": {}}
    for label, held_out in (("seen pairs", False), ("held-out pairs", True)):
        pairs = bundles.evaluation_pairs(concepts, rows["style"], count, held_out,
                                         sampling["seed"])
        if not len(pairs):
            continue
        prompts, owner = bundles.evaluation_prompts(pairs, names_en, names_zh, sampling["seed"])
        ids = concept_index[pairs]
        rgba = {r: data_loader.load_image_rgba(rows["path"][r], config.image_size)
                for r in np.unique(pairs)}
        composites = np.stack([bundles.composite_products([rgba[a], rgba[b]], "side_by_side",
                                               config.image_size, rng) for a, b in pairs])
        scored = {"real composites (ceiling)": two_objects(encoder, composites, ids, vectors,
                                                           sampling["seed"]),
                  "real, first product alone": two_objects(
                      encoder, np.stack([rgba[a][..., :3] for a, _ in pairs]), ids, vectors,
                      sampling["seed"])}
        drawn = [row for run in runs for compose in (False, True)
                 for row in generated_rows(run, prompts, **sampling, compose=compose)]
        for name, result, _ in drawn:
            images = result["images"].reshape(-1, *result["images"].shape[2:])
            scored[name] = two_objects(encoder, images,
                                       np.repeat(ids[owner], sampling["per_prompt"], 0),
                                       vectors, sampling["seed"])
        section["pairs"][label] = {"pairs": len(pairs), "prompts": len(prompts),
                                   "examples": prompts[:6], "rows": scored}
    return section


def shares_text_encoder(gan, encoder):
    """True if a run's text encoder holds the evaluator's text encoder weights."""
    ours = gan.text_encoder.get_weights()
    theirs = encoder.text_encoder.get_weights()
    return (len(ours) == len(theirs) and all(a.shape == b.shape for a, b in zip(ours, theirs))
            and all(np.allclose(a, b) for a, b in zip(ours, theirs)))


def open_runs(run_dirs, encoder, gated=True):
    """The opened `Run`s, and those whose text encoder is the evaluator's own (warned of)."""
    opened = [Run(run_dir, gated=gated) for run_dir in run_dirs]
    coupled = [run for run in opened if shares_text_encoder(run.model, encoder)]
    for run in coupled:
        print(f"evaluate: warning: {run.folder} uses the evaluator's own text encoder weights; its "
              "R-precision is inflated (train the evaluator with another --seed)", file=sys.stderr)
    return opened, coupled


def reference_rows(encoder, real_images, real_prompts, prompt_concept, common, seed):
    """The real-image rows: each real image against each of its prompts (the ceiling), and
    against a random prompt of another concept (the floor)."""
    rng = np.random.default_rng(seed)
    real_index = np.array([i for i, p in enumerate(real_prompts) for _ in p])
    real_true = np.array([q for p in real_prompts for q in p])
    shuffled_true = np.array([rng.choice(np.flatnonzero(prompt_concept != prompt_concept[q]))
                              for q in real_true])
    return {"real images (ceiling)": score_set(encoder, real_images[real_index], real_true,
                                               real_true, real_features=None, **common),
            "real images, shuffled prompts (floor)": score_set(
                encoder, real_images[real_index], shuffled_true, shuffled_true,
                real_features=None, **common)}


def model_rows(runs, prompts, sampling, encoder, real_images, common, inception=None):
    """Every run's generated rows (ungated, gated) and their pictures."""
    real_features = distance_features(encoder.embed_images(to_float(real_images))[0])
    real_inception = inception(real_images) if inception else None
    generated_true = np.repeat(np.arange(len(prompts)), sampling["per_prompt"])
    rows, pictures = {}, {}
    for run in runs:
        for label, result, extras in generated_rows(run, prompts, **sampling):
            images = result["images"].reshape(-1, *result["images"].shape[2:])
            rows[label] = {**score_set(encoder, images, generated_true, generated_true,
                                       real_features=real_features, **common), **extras}
            if inception:
                rows[label]["fid_inception"] = frechet_distance(inception(images),
                                                                real_inception)
            pictures[label] = result["images"]
    return rows, pictures


def evaluate_runs(run_dirs, encoder_dir, split, per_prompt=4, max_tries=8, repeats=5, seed=0,
                  caption_columns=None, inception_weights=None, gated=True, style=VARIED,
                  bundle_pairs=0, judge=None):
    """The report dict, plus the prompts and images for its pictures. `judge`: None, or
    `judge_report`'s keyword arguments (judge_dir, groups, panel_prompts, ...) to add the
    independent judge's section."""
    config = load_config(run_dirs[0])
    caption_columns = tuple(caption_columns or config.caption_columns[:2])
    prompts, prompt_concept, real_images, real_prompts = evaluation_set(config, split,
                                                                        caption_columns)
    encoder = dual_encoder.load_encoder(encoder_dir)
    opened, coupled = open_runs(run_dirs, encoder, gated)
    common = dict(prompt_vectors=encoder.embed_texts(prompts), prompt_concept=prompt_concept,
                  repeats=repeats, seed=seed)
    sampling = dict(per_prompt=per_prompt, max_tries=max_tries, seed=seed, style=style)
    inception = InceptionFeatures(inception_weights) if inception_weights else None
    rows = reference_rows(encoder, real_images, real_prompts, prompt_concept, common, seed)
    generated, pictures = model_rows(opened, prompts, sampling, encoder, real_images, common,
                                     inception)
    color, color_pictures = color_accuracy(config, split, caption_columns, opened, sampling)
    report = {"split": split or "all", "runs": [os.path.abspath(r) for r in run_dirs],
              "encoder": os.path.abspath(encoder_dir), "prompts": len(prompts),
              "concepts": int(len(np.unique(prompt_concept))), "real_images": len(real_images),
              "samples_per_prompt": per_prompt, "style": style,
              "r_precision_candidates": int(min(100, 1 + min(
                  np.sum(prompt_concept != c) for c in prompt_concept))),
              "repeats": repeats, "caption_columns": list(caption_columns),
              "runs_sharing_the_evaluator_text_encoder": [os.path.abspath(r.folder)
                                                          for r in coupled],
              "rows": {**rows, **generated}}
    pictures["real"] = real_images
    report.update(color)
    pictures.update(color_pictures)
    if bundle_pairs:
        report["bundles"] = bundle_section(config, split, opened, encoder, sampling, bundle_pairs)
    if judge:
        report["judge"], pictures["judge_panel"] = judge_report(
            runs=opened, sampling=sampling, **judge)
    return report, prompts, real_prompts, pictures


def evaluate_parser():
    parser = argparse.ArgumentParser(description="Measure a run with the in-domain encoder.")
    parser.add_argument("--run", required=True, help="training run folder")
    parser.add_argument("--compare", nargs="*", default=[], help="more runs to measure alike")
    parser.add_argument("--encoder", default=dual_encoder.DEFAULT_ENCODER,
                        help="trained dual encoder")
    parser.add_argument("--split", default="test", help="manifest split (\"\" = all rows)")
    parser.add_argument("--out", default="report.json")
    parser.add_argument("--samples-per-prompt", type=int, default=4)
    parser.add_argument("--max-tries", type=int, default=8, help="the gate's budget")
    parser.add_argument("--repeats", type=int, default=5, help="R-precision repeats")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", choices=(VARIED, NONE), default=VARIED,
                        help="varied (default, as generate.py draws): each sample of a prompt "
                             "names the style its seed picks; none: the prompts as they are")
    parser.add_argument("--no-gate", action="store_true",
                        help="measure only the ungated rows (needed for an uncalibrated run)")
    parser.add_argument("--bundle-pairs", type=int, default=100,
                        help="concept pairs of the two-object measure, seen and held out "
                             "each (0 = skip it)")
    parser.add_argument("--inception-weights",
                        help="a local InceptionV3 weights file: adds true (Inception) FID")
    parser.add_argument("--judge", default=DEFAULT_JUDGE,
                        help="the independent judge (judge.py; the shipped one by default)")
    parser.add_argument("--no-judge", action="store_true", help="leave the judge out")
    parser.add_argument("--judge-only", action="store_true",
                        help="only the judge's section (needs no dual encoder)")
    parser.add_argument("--judge-groups", type=split_list, default=list(JUDGE_GROUPS),
                        help="comma-separated manifest groups whose concepts the judge reads "
                             "(default: Food & Drink,Objects; all when the judge has none)")
    parser.add_argument("--panel-samples", type=int, default=8,
                        help="draws per prompt of the judged by-eye panel (0 = no panel)")
    return parser


def main(argv=None):
    """CLI: `train-encoder`, `train-judge`, `shop` (shop.py) or an evaluation; returns the
    encoder or judge folder or the report."""
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"train-encoder": dual_encoder.main, "train-judge": judge_model.main,
                "shop": shop.main}
    if argv and argv[0] in commands:
        return commands[argv[0]](argv[1:])
    parser = evaluate_parser()
    args = parser.parse_args(argv)
    if args.samples_per_prompt < 2:
        parser.error("--samples-per-prompt must be at least 2 (diversity needs pairs)")
    if args.judge_only and args.no_judge:
        parser.error("--judge-only and --no-judge contradict each other")
    judge = None if args.no_judge else dict(
        judge_dir=args.judge, groups=tuple(args.judge_groups), repeats=args.repeats,
        panel_prompts=PANEL_PROMPTS if args.panel_samples else (),
        panel_samples=args.panel_samples, bundle_pairs=args.bundle_pairs,
        diversity_concepts=50)
    run_dirs = [args.run, *args.compare]
    try:
        if args.judge_only:  # and colour accuracy, which needs no encoder either
            config = load_config(args.run)
            color = lambda runs, sampling: color_accuracy(  # noqa: E731
                config, args.split, config.caption_columns[:2], runs,
                {**sampling, "style": args.style, "per_prompt": args.samples_per_prompt})
            report, pictures = judge_runs(run_dirs, args.max_tries, args.seed,
                                          not args.no_gate, judge, color)
            prompts = real_prompts = None
        else:
            report, prompts, real_prompts, pictures = evaluate_runs(
                run_dirs, args.encoder, args.split, args.samples_per_prompt, args.max_tries,
                args.repeats, args.seed, inception_weights=args.inception_weights,
                gated=not args.no_gate, style=args.style, bundle_pairs=args.bundle_pairs,
                judge=judge)
    except (FileNotFoundError, ValueError) as error:  # RunError and ManifestError included
        parser.exit(1, f"evaluate: {error}\n")
    write_report(report, prompts, real_prompts, pictures, args.out)
    if "judge" in report:
        print(format_judge_table(report["judge"]))
    if "color" in report:
        print(format_color_table(report["color"]))
    if "rows" not in report:
        print(f"evaluate: wrote {args.out} and {os.path.splitext(args.out)[0]}.md")
        return report
    print(format_table(report))
    if "bundles" in report:
        print(format_bundle_table(report["bundles"]))
    print(f"evaluate: wrote {args.out}, {os.path.splitext(args.out)[0]}.md and .png")
    return report


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "evaluate")


if __name__ == "__main__":
    console_main()
