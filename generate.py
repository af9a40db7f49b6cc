"""Draw images from a trained run, gated by its discriminator.

    python generate.py --run RUN --out grid.png -n 8 "黑色羽绒服" "coffee and cake"
    python generate.py --run RUN --out-dir images/ -n 4 --seed 7 "running shoes"
    python generate.py --run RUN --user-events events.jsonl --user u1 --out-dir ADS

`--out` writes one grid (one row a prompt); `--out-dir` writes one PNG per image
(`NN_prompt-slug_K.png`). Image k of every prompt uses seed SEED+k, so the same
`--seed` gives the same images, and the exported SavedModel called with that seed
returns the same picture. Each image is the first of up to `--max-tries`
candidates that passes the gate (DRS with target rate `--gamma`, or
`--min-score`), else the best-scoring one; `--no-gate` keeps the first candidate.
A prompt that is empty or has no known token exits with status 2.

With `--user-events LOG --user U` the prompts come from the user's behaviour
(personalize.py): each ranked prompt gets `-n` gated candidates, the one closest
to the user's interest becomes a finished creative (creative.py) in --out-dir,
with a JSON sidecar giving the reasons; OUT_DIR/user-U.json summarises them.
"""

import argparse
import os
import re
import sys

import numpy as np

import gate as gating
from imaging import make_grid, save_png

EXIT_BAD_PROMPT = 2


class PromptError(ValueError):
    """A prompt the model cannot draw (empty, or no token it knows)."""


def load_run(run_dir):
    """Load the final `TextToImageGAN` of a training run folder."""
    import keras

    import baseline  # noqa: F401  (registers the adgan classes for deserialization)
    import model  # noqa: F401

    path = os.path.join(run_dir, "final", "model.keras")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {run_dir} a finished training run?")
    return keras.saving.load_model(path)


def check_prompts(gan, prompts):
    """Raise `PromptError` for unusable prompts; return warnings for truncated ones."""
    from data_loader import count_known_tokens, split_tokens

    warnings = []
    for prompt in prompts:
        if not prompt.strip():
            raise PromptError("empty prompt: give some words, e.g. \"黑色羽绒服\" or \"red dress\"")
        tokens = split_tokens([prompt])
        if count_known_tokens(gan.vectorizer, [prompt])[0] == 0:
            raise PromptError(f"no known token in prompt {prompt!r}: the model's vocabulary "
                              "has none of its words or characters")
        if len(tokens) > gan.sequence_length:
            warnings.append(f"prompt {prompt!r} has {len(tokens)} tokens; only the first "
                            f"{gan.sequence_length} are used")
    return warnings


def generate_images(gan, prompts, per_prompt, seed=0, gate=None, max_tries=1):
    """Gated images of each prompt; image k of every prompt uses seed `seed + k`.

    Returns numpy {"images": uint8 [P, K, H, W, 3], "score", "accepted", "tries": [P, K]}.
    Without a `gate`, the first candidate is kept and scored by D's raw logit.
    """
    gate = gate or gating.Gate(slope=1.0, intercept=0.0, max_log_odds=0.0, shift=0.0)
    texts = [p for p in prompts for _ in range(per_prompt)]
    seeds = [seed + k for _ in prompts for k in range(per_prompt)]
    out = gating.GatedSampler(gan, gate)(texts, seeds, [max_tries] * len(texts))
    return {name: value.reshape(len(prompts), per_prompt, *value.shape[1:])
            for name, value in out.items()}


def gate_report(prompt, result, gated):
    """One line per prompt: tries used, acceptance rate and the chosen scores."""
    scores = " ".join(f"{s:.2f}" for s in result["score"])
    if not gated:
        return f"{prompt!r}: gate off, scores {scores}"
    tries, accepted = int(result["tries"].sum()), int(result["accepted"].sum())
    return (f"{prompt!r}: {accepted}/{len(result['score'])} accepted in {tries} tries "
            f"(acceptance {accepted / tries:.0%}), scores {scores}")


def slug(text, limit=40):
    """File-name-safe form of a prompt (keeps Han characters and word characters)."""
    return re.sub(r"[^\w]+", "-", text, flags=re.UNICODE).strip("-")[:limit] or "prompt"


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", nargs="*", help="text prompts (Chinese, English or mixed)")
    parser.add_argument("--run", required=True, help="training run folder")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="write one grid PNG here (one row a prompt)")
    target.add_argument("--out-dir", help="write one PNG per image into this folder")
    parser.add_argument("-n", "--num-images", type=int, default=4, help="images per prompt")
    parser.add_argument("--seed", type=int, default=0, help="image k of each prompt uses SEED+k")
    parser.add_argument("--max-tries", type=int, default=gating.DEFAULT_MAX_TRIES,
                        help="candidates per image before settling for the best one")
    parser.add_argument("--gamma", type=float,
                        help="DRS target acceptance rate (default: the run's calibration)")
    parser.add_argument("--min-score", type=float,
                        help="accept by a fixed score threshold in [0, 1] instead of DRS")
    parser.add_argument("--no-gate", action="store_true", help="keep the first candidate")
    parser.add_argument("--user-events", help="a JSONL event log: make --user's creatives")
    parser.add_argument("--user", help="the user whose creatives to make (with --user-events)")
    parser.add_argument("--user-prompts", type=int, default=3,
                        help="with --user-events: how many ranked prompts to draw")
    parser.add_argument("--encoder", help="dual encoder for the user's interest (default: the "
                                          "run's own RUN/text_encoder)")
    parser.add_argument("--compare-gate", action="store_true",
                        help="with --out: each row shows the ungated images (the first "
                             "candidates), a gap, then the gated ones")
    return parser


def check_flags(parser, args):
    """Exit with a usage error for out-of-range numbers."""
    if args.num_images < 1:
        parser.error(f"-n must be at least 1, got {args.num_images}")
    if args.max_tries < 1:
        parser.error(f"--max-tries must be at least 1, got {args.max_tries}")
    if args.gamma is not None and not 0.0 < args.gamma <= 1.0:
        parser.error(f"--gamma must be in (0, 1], got {args.gamma}")
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        parser.error(f"--min-score must be in [0, 1], got {args.min_score}")
    if args.compare_gate and (args.no_gate or not args.out):
        parser.error("--compare-gate needs --out and the gate (not --no-gate)")
    if bool(args.user_events) != bool(args.user):
        parser.error("--user-events and --user go together")
    if args.user_events and (args.prompts or not args.out_dir):
        parser.error("--user-events takes no prompts and needs --out-dir")
    if not args.user_events and not args.prompts:
        parser.error("give at least one prompt (or --user-events LOG --user U)")


def side_by_side(ungated, gated):
    """uint8 [P, 2K + 1, H, W, 3]: each prompt's ungated images, a white gap, its gated ones."""
    gap = np.full_like(ungated[:, :1], 255)
    return np.concatenate([ungated, gap, gated], axis=1)


def make_gate(parser, args):
    """The `Gate` the flags ask for (None with --no-gate and no calibration)."""
    calibration = gating.load_calibration(args.run)
    if calibration is None:
        if args.no_gate:
            return None
        parser.exit(1, f"generate: {args.run} has no final/{gating.CALIBRATION_FILE}; "
                       f"calibrate it with `python gate.py --run {args.run}`, or pass --no-gate\n")
    return gating.Gate.from_calibration(calibration, args.gamma, args.min_score)


def main(argv=None):
    """CLI entry point; returns the list of files written."""
    parser = make_parser()
    args = parser.parse_args(argv)
    check_flags(parser, args)
    if args.user_events:
        return user_creatives(parser, args)
    try:
        gan = load_run(args.run)
    except (FileNotFoundError, OSError, ValueError) as error:
        parser.exit(1, f"generate: {error}\n")
    gate = make_gate(parser, args)
    try:
        for warning in check_prompts(gan, args.prompts):
            print(f"generate: warning: {warning}", file=sys.stderr)
    except PromptError as error:
        parser.exit(EXIT_BAD_PROMPT, f"generate: {error}\n")

    result = generate_images(gan, args.prompts, args.num_images, args.seed, gate,
                             1 if args.no_gate else args.max_tries)
    for i, prompt in enumerate(args.prompts):
        print("generate: " + gate_report(prompt, {k: v[i] for k, v in result.items()},
                                         not args.no_gate))
    images = result["images"]
    if args.compare_gate:
        first = generate_images(gan, args.prompts, args.num_images, args.seed, gate, 1)
        print(f"generate: mean score ungated {first['score'].mean():.3f}, gated "
              f"{result['score'].mean():.3f} (left: ungated, right: gated)")
        images = side_by_side(first["images"], images)
    written = []
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        save_png(make_grid(images.reshape(-1, *images.shape[2:]), rows=len(args.prompts)),
                 args.out)
        written.append(args.out)
    else:
        os.makedirs(args.out_dir, exist_ok=True)
        for i, prompt in enumerate(args.prompts):
            for k, image in enumerate(images[i]):
                path = os.path.join(args.out_dir, f"{i:02d}_{slug(prompt)}_{k}.png")
                save_png(image, path)
                written.append(path)
    print(f"generate: wrote {', '.join(written) if len(written) <= 3 else f'{len(written)} files'}")
    return written


def user_creatives(parser, args):
    """--user-events mode: the user's personalised creatives; returns the PNG paths."""
    import personalize
    from products import RunSource, SourceError

    try:
        summary = personalize.make_user_creatives(
            RunSource(args.run), args.run, args.user_events, args.user, args.out_dir,
            prompts=args.user_prompts, candidates=args.num_images, seed=args.seed,
            num_candidates=1 if args.no_gate else args.max_tries, encoder_dir=args.encoder)
    except (personalize.EventLogError, SourceError) as error:
        parser.exit(1, f"generate: {error}\n")
    if summary["skipped_lines"]:
        print(f"generate: skipped {summary['skipped_lines']} malformed line(s) of "
              f"{args.user_events}: " + "; ".join(f"line {s['line']}: {s['reason']}"
                                                  for s in summary["skipped"][:5]),
              file=sys.stderr)
    for item in summary["creatives"]:
        print(f"generate: {item['file']}: {item['prompt']!r} because "
              + "; ".join(item["reasons"]))
    return [item["file"] for item in summary["creatives"]]


def console_main():
    """Entry point of the installed console script (its exit status is 0 on success)."""
    main()


if __name__ == "__main__":
    main()
