"""Draw images from a trained run.

    python generate.py --run RUN --out grid.png -n 8 "黑色羽绒服" "coffee and cake"
    python generate.py --run RUN --out-dir images/ -n 4 --seed 7 "running shoes"

`--out` writes one grid (one row a prompt); `--out-dir` writes one PNG per image
(`NN_prompt-slug_K.png`). The same `--seed` gives the same images. A prompt that
is empty or has no known token exits with status 2.
"""

import argparse
import os
import re
import sys

import numpy as np

from imaging import make_grid, save_png, to_uint8

EXIT_BAD_PROMPT = 2


class PromptError(ValueError):
    """A prompt the model cannot draw (empty, or no token it knows)."""


def load_run(run_dir):
    """Load the final `TextToImageGAN` of a training run folder."""
    import keras

    import model  # noqa: F401  (registers the adgan classes for deserialization)

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


def generate_images(gan, prompts, per_prompt, seed=0):
    """uint8 images [len(prompts), per_prompt, H, W, 3]; the same seed gives the same images."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(prompts) * per_prompt, gan.noise_dim)).astype(np.float32)
    texts = [p for p in prompts for _ in range(per_prompt)]
    images = to_uint8(gan.generate(texts, noise=noise))
    return images.reshape(len(prompts), per_prompt, *images.shape[1:])


def slug(text, limit=40):
    """File-name-safe form of a prompt (keeps Han characters and word characters)."""
    return re.sub(r"[^\w]+", "-", text, flags=re.UNICODE).strip("-")[:limit] or "prompt"


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", nargs="+", help="text prompts (Chinese, English or mixed)")
    parser.add_argument("--run", required=True, help="training run folder")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="write one grid PNG here (one row a prompt)")
    target.add_argument("--out-dir", help="write one PNG per image into this folder")
    parser.add_argument("-n", "--num-images", type=int, default=4, help="images per prompt")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    """CLI entry point; returns the list of files written."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.num_images < 1:
        parser.error(f"-n must be at least 1, got {args.num_images}")
    try:
        gan = load_run(args.run)
    except (FileNotFoundError, OSError, ValueError) as error:
        parser.exit(1, f"generate: {error}\n")
    try:
        for warning in check_prompts(gan, args.prompts):
            print(f"generate: warning: {warning}", file=sys.stderr)
    except PromptError as error:
        parser.exit(EXIT_BAD_PROMPT, f"generate: {error}\n")

    images = generate_images(gan, args.prompts, args.num_images, args.seed)
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


def console_main():
    """Entry point of the installed console script (its exit status is 0 on success)."""
    main()


if __name__ == "__main__":
    main()
