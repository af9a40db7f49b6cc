"""Offline quality suite: train the evaluator, then measure runs with it.

    python evaluate.py train-encoder [--data MANIFEST] --out ENC     # the dual encoder
    python evaluate.py --run RUN [--encoder ENC] [--split test|train] --out report.json
                       [--compare OTHER_RUN ...]

Metrics (all in the in-domain encoder's space; nothing downloads weights):
- R-precision: each generated image ranks its prompt against 99 prompts of other
  concepts by cosine; top-1 rate, mean +- std over repeats (AttnGAN's protocol).
- FID (in-domain encoder) and KID (unbiased MMD^2, cubic kernel): generated vs real
  images of the split, on the encoder's pooled image features scaled to norm
  sqrt(D). Not Inception FID.
- Diversity: mean pairwise distance of unit image features among images of one prompt.
- Colour accuracy: for the recolourable rows (clothes, bags, shoes, cars; colors.py),
  prompts such as "red dress" / "红色连衣裙" in every palette colour; the dominant
  colour of the generated product's pixels must be the prompt's.
- The gate's effect: the model's rows with and without the discriminator gate.
- With `--inception-weights FILE` (a local InceptionV3 weights file), true FID too.
Reference rows: real images (the ceiling) and real images with shuffled prompts
(the floor). Writes report.json and report.md (a table and a picture grid).
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

from metrics import (color_scores, distance_features, diversity, frechet_distance,  # noqa: F401
                     kernel_inception_distance, r_precision)

DEFAULT_ENCODER = "encoders/emoji"


# ----------------------------------------------------------------------------- the encoder

@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Settings of `train-encoder`."""

    data: str = ""  # manifest; "" = the shipped emoji manifest
    out: str = DEFAULT_ENCODER
    image_column: str = "image"
    caption_columns: tuple = ("name_en", "name_zh", "keywords_en", "keywords_zh")
    split: str = "train"
    groups: tuple = ()  # rows of the manifest's `group` column; () = all
    styles: tuple = ()
    image_size: int = 32  # generated images of any size are resized to this
    batch_size: int = 64
    epochs: int = 100
    learning_rate: float = 1e-3
    image_channels: int = 32
    sequence_length: int = 16
    embedding_dim: int = 128
    text_hidden_units: int = 128
    max_vocabulary: int = 8000
    color_augment: int = 0  # recoloured copies of the colour subgroups' rows (colors.py)
    color_subgroups: tuple = ("clothing", "transport-ground")
    # 1, not the runs' 0: a GAN whose text encoder is the evaluator's own (`train.py
    # --text-encoder auto` with the same data and seed) would be judged by itself.
    seed: int = 1
    verbose: int = 1


def train_encoder(config):
    """Train a `DualEncoder` on a manifest's split; returns its folder."""
    import keras

    import data_loader
    from encoder import ENCODER_FILE, DualEncoder

    manifest = config.data or data_loader.DEFAULT_MANIFEST
    examples, _ = data_loader.load_examples(
        manifest, config.image_size, config.image_column, config.caption_columns,
        config.split or None, {"group": config.groups, "style": config.styles},
        data_loader.recolor_filter(manifest, config.color_subgroups, config.color_augment))
    vocabulary = data_loader.examples_vocabulary(examples, config.max_vocabulary,
                                                 config.color_augment)
    keras.utils.set_random_seed(config.seed)
    encoder = DualEncoder(vocabulary, config.image_size, config.sequence_length,
                          config.embedding_dim, config.text_hidden_units, config.image_channels,
                          seed=config.seed)
    encoder.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    dataset = data_loader.make_dataset(examples, config.image_size,
                                       min(config.batch_size, len(examples)),
                                       seed=config.seed, vectorizer=encoder.vectorizer,
                                       color_augment=config.color_augment)
    started = time.time()
    history = encoder.fit(dataset, epochs=config.epochs, verbose=config.verbose)
    seconds = time.time() - started

    os.makedirs(config.out, exist_ok=True)
    tmp = os.path.join(config.out, ENCODER_FILE + ".tmp.keras")
    encoder.save(tmp)
    os.replace(tmp, os.path.join(config.out, ENCODER_FILE))
    data_loader.save_vocabulary(vocabulary, os.path.join(config.out, "vocabulary.txt"))
    report = {"config": dataclasses.asdict(config), "examples": len(examples),
              "tokens": len(vocabulary), "seconds": round(seconds, 1),
              "final_loss": float(history.history["loss"][-1]),
              "final_batch_top1": float(history.history["top1"][-1])}
    for split in ("train", "test"):  # a quick check of image -> caption retrieval
        try:
            rows, _ = data_loader.load_examples(
                manifest, config.image_size, config.image_column, config.caption_columns[:2],
                split, {"group": config.groups, "style": config.styles})
        except data_loader.ManifestError:
            continue
        texts = [c[0] for c in rows["captions"]]
        images = np.stack([data_loader.load_image(p, config.image_size) for p in rows["path"]])
        # each image's first caption among 99 others (R-precision of real images)
        report[f"retrieval_top1_{split}"] = r_precision(
            encoder.embed_images(to_float(images))[1], np.arange(len(texts)),
            encoder.embed_texts(texts), texts, repeats=1, seed=config.seed)[0]
    data_loader.write_json(report, os.path.join(config.out, "report.json"))
    return config.out


def encoder_parser():
    parser = argparse.ArgumentParser(prog="evaluate.py train-encoder",
                                     description="Train the dual text-image encoder.")
    for field in dataclasses.fields(EncoderConfig):
        kind = type(field.default)
        parser.add_argument("--" + field.name.replace("_", "-"), default=field.default,
                            type=(lambda text: tuple(v for v in text.split(",") if v))
                            if kind is tuple else kind,
                            help=f"default {field.default!r}" + (" (comma-separated)"
                                                                 if kind is tuple else ""))
    return parser


# ----------------------------------------------------------------------------- evaluation

def evaluation_set(config, split, caption_columns):
    """Real rows of a run's manifest and groups in `split`, as prompts and images.

    Returns (prompts [P], prompt_concept [P], real_images uint8 [R, S, S, 3],
    real_prompts: list of prompt-index lists, one per real image). A concept is a
    row's first caption (e.g. its English name); its captions in `caption_columns`
    are its prompts.
    """
    import data_loader

    filters = {"group": config.get("groups", ()), "style": config.get("styles", ())}
    rows, _ = data_loader.load_examples(config["manifest"], config["image_size"],
                                        config["image_column"], caption_columns, split or None,
                                        filters)
    prompts, concept_of, index = [], [], {}
    real_prompts = []
    for captions in rows["captions"]:
        for caption in captions:
            if caption not in index:
                index[caption] = len(prompts)
                prompts.append(caption)
                concept_of.append(captions[0])
        real_prompts.append([index[c] for c in captions])
    images = np.stack([data_loader.load_image(p, config["image_size"]) for p in rows["path"]])
    return prompts, np.array(concept_of), images, real_prompts


def to_float(images):
    """uint8 -> float32 in [-1, 1]."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


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


class InceptionFeatures:
    """2048-d pool features of a user's InceptionV3 weights file (for true FID; optional).

    Nothing is downloaded: `weights` must be a local file that
    `keras.applications.InceptionV3(include_top=False, pooling="avg")` can load.
    """

    def __init__(self, weights):
        import keras

        if not os.path.exists(weights):
            raise FileNotFoundError(f"--inception-weights {weights} not found (FID with "
                                    "Inception needs the weights file on disk; leave the flag "
                                    "out to skip it)")
        self.model = keras.applications.InceptionV3(include_top=False, pooling="avg",
                                                    weights=weights, input_shape=(299, 299, 3))

    def __call__(self, images, batch_size=32):
        """uint8 images [N, S, S, 3] -> features [N, 2048] (bilinear resize to 299, [-1, 1])."""
        import tensorflow as tf

        out = []
        for start in range(0, len(images), batch_size):
            batch = tf.image.resize(to_float(images[start:start + batch_size]), (299, 299))
            out.append(self.model(batch, training=False).numpy())
        return np.concatenate(out)


def generated_rows(gan, run_dir, name, prompts, per_prompt, max_tries, seed):
    """(label, images [P*K], row extras) for a loaded run, ungated and (if calibrated) gated."""
    import gate as gating
    import generate

    calibration = gating.load_calibration(run_dir)
    gate = gating.Gate.from_calibration(calibration) if calibration else None
    started = time.time()
    plain = generate.generate_images(gan, prompts, per_prompt, seed, gate, 1)
    rows = [(f"{name} (ungated)", plain, {"seconds": round(time.time() - started, 1)})]
    if gate is not None:
        started = time.time()
        gated = generate.generate_images(gan, prompts, per_prompt, seed, gate, max_tries)
        rows.append((f"{name} (gated: DRS, gamma {calibration['gamma']}, {max_tries} tries)",
                     gated, {"seconds": round(time.time() - started, 1),
                             "accepted": float(gated["accepted"].mean()),
                             "acceptance_rate": float(gated["accepted"].sum()
                                                      / gated["tries"].sum()),
                             "tries_per_image": float(gated["tries"].mean())}))
    return rows


def color_set(config, split, caption_columns):
    """Colour prompts of a run's recolourable rows in `split`, or None if it has none.

    Each concept's captions in `caption_columns` ("dress", "连衣裙") are prefixed with
    every palette colour ("red dress", "红色连衣裙"). Returns (prompts [P], target
    colour index [P], real recoloured images uint8 [R, S, S, 3], their colours [R]).
    """
    import colors
    import data_loader

    filters = {"group": config.get("groups", ()), "style": config.get("styles", ())}
    subgroups = config.get("color_subgroups", colors.DEFAULT_SUBGROUPS)
    try:
        rows, _ = data_loader.load_examples(config["manifest"], config["image_size"],
                                            config["image_column"], caption_columns,
                                            split or None, filters, {"subgroup": subgroups})
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
        rgba = data_loader.load_image_rgba(path, config["image_size"])
        real += [colors.recolor(rgba, k).numpy() for k in palette]
        real_targets += list(palette)
    return prompts, targets, np.stack(real), np.array(real_targets)


def color_accuracy(config, split, caption_columns, gans, per_prompt, max_tries, seed):
    """The colour section of a report (None when the split has no recolourable row), and
    its pictures: {label: uint8 [P, K, S, S, 3]} with the prompts."""
    import colors

    found = color_set(config, split, caption_columns)
    if found is None:
        return None, None
    prompts, targets, real, real_targets = found
    section = {"prompts": len(prompts), "colors": list(colors.COLOR_NAMES),
               "chance": 1.0 / len(colors.PALETTE),
               "rows": {"real images, recoloured (ceiling)": color_scores(real, real_targets)}}
    pictures = {}
    for run_dir, gan in gans.items():
        name = os.path.basename(os.path.normpath(run_dir))
        for label, result, extras in generated_rows(gan, run_dir, name, prompts, per_prompt,
                                                    max_tries, seed):
            images = result["images"].reshape(-1, *result["images"].shape[2:])
            section["rows"][label] = {**color_scores(images, np.repeat(targets, per_prompt)),
                                      **{k: v for k, v in extras.items() if k != "seconds"}}
            pictures[label] = result["images"]
    return section, (prompts, pictures)


def color_picture(prompts, pictures, concepts=2, rows=2):
    """uint8 grid, enlarged 2x: per palette colour of the first `concepts` concepts, the
    samples of the first `rows` generated rows (the first run, ungated and gated)."""
    import colors
    from imaging import make_grid

    count = len(colors.PALETTE)
    shown = list(range(min(concepts, len(prompts) // count) * count))
    first = list(pictures.values())[:rows]
    cells = [image for p in shown for images in first for image in images[p]]
    grid = make_grid(np.stack(cells), rows=len(shown))
    return grid.repeat(2, axis=0).repeat(2, axis=1), [prompts[p] for p in shown]


def shares_text_encoder(gan, encoder):
    """True if a run's text encoder holds the evaluator's text encoder weights."""
    ours = gan.text_encoder.get_weights()
    theirs = encoder.text_encoder.get_weights()
    return (len(ours) == len(theirs) and all(a.shape == b.shape for a, b in zip(ours, theirs))
            and all(np.allclose(a, b) for a, b in zip(ours, theirs)))


def evaluate_runs(run_dirs, encoder_dir, split, per_prompt=4, max_tries=8, repeats=5, seed=0,
                  caption_columns=None, inception_weights=None):
    """The report dict, plus the images for its picture."""
    import generate
    from encoder import load_encoder

    with open(os.path.join(run_dirs[0], "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    caption_columns = tuple(caption_columns or config["caption_columns"][:2])
    prompts, prompt_concept, real_images, real_prompts = evaluation_set(config, split,
                                                                        caption_columns)
    encoder = load_encoder(encoder_dir)
    gans = {run_dir: generate.load_run(run_dir) for run_dir in run_dirs}  # each loaded once
    coupled = [r for r in run_dirs if shares_text_encoder(gans[r], encoder)]
    for run_dir in coupled:
        print(f"evaluate: warning: {run_dir} uses the evaluator's own text encoder weights; its "
              "R-precision is inflated (train the evaluator with another --seed)", file=sys.stderr)
    prompt_vectors = encoder.embed_texts(prompts)
    real_features = distance_features(encoder.embed_images(to_float(real_images))[0])
    inception = InceptionFeatures(inception_weights) if inception_weights else None
    real_inception = inception(real_images) if inception else None
    rng = np.random.default_rng(seed)
    # Real references: each real image against each of its prompts; the floor gives
    # every image a random prompt of another concept instead.
    real_index = np.array([i for i, p in enumerate(real_prompts) for _ in p])
    real_true = np.array([q for p in real_prompts for q in p])
    shuffled_true = np.array([rng.choice(np.flatnonzero(prompt_concept != prompt_concept[q]))
                              for q in real_true])
    common = dict(prompt_vectors=prompt_vectors, prompt_concept=prompt_concept,
                  repeats=repeats, seed=seed)
    rows = {"real images (ceiling)": score_set(encoder, real_images[real_index], real_true,
                                               real_true, real_features=None, **common),
            "real images, shuffled prompts (floor)": score_set(
                encoder, real_images[real_index], shuffled_true, shuffled_true,
                real_features=None, **common)}
    pictures = {"real": real_images}
    generated_true = np.repeat(np.arange(len(prompts)), per_prompt)
    for run_dir in run_dirs:
        name = os.path.basename(os.path.normpath(run_dir))
        for label, result, extras in generated_rows(gans[run_dir], run_dir, name, prompts,
                                                    per_prompt, max_tries, seed):
            images = result["images"].reshape(-1, *result["images"].shape[2:])
            rows[label] = {**score_set(encoder, images, generated_true, generated_true,
                                       real_features=real_features, **common), **extras}
            if inception:
                rows[label]["fid_inception"] = frechet_distance(inception(images),
                                                                real_inception)
            pictures[label] = result["images"]
    color, color_pictures = color_accuracy(config, split, caption_columns, gans, per_prompt,
                                           max_tries, seed)
    report = {"split": split or "all", "runs": [os.path.abspath(r) for r in run_dirs],
              "encoder": os.path.abspath(encoder_dir), "prompts": len(prompts),
              "concepts": int(len(np.unique(prompt_concept))), "real_images": len(real_images),
              "samples_per_prompt": per_prompt,
              "r_precision_candidates": int(min(100, 1 + min(
                  np.sum(prompt_concept != c) for c in prompt_concept))),
              "repeats": repeats, "caption_columns": list(caption_columns),
              "runs_sharing_the_evaluator_text_encoder": [os.path.abspath(r) for r in coupled],
              "rows": rows}
    if color:
        report["color"] = color
        pictures["color"] = color_pictures
    return report, prompts, real_prompts, pictures


def report_picture(prompts, real_prompts, pictures, count=8):
    """uint8 grid, enlarged 2x: one row per prompt (the first `count`): a real image, then
    the samples of each generated row of the report."""
    from imaging import make_grid

    real = pictures["real"]
    generated = {k: v for k, v in pictures.items() if k not in ("real", "color")}
    first_real = {}
    for image_index, prompt_indices in enumerate(real_prompts):
        for prompt in prompt_indices:
            first_real.setdefault(prompt, image_index)
    shown = [p for p in range(len(prompts)) if p in first_real][:count]
    cells = []
    for prompt in shown:
        cells.append(real[first_real[prompt]])
        for images in generated.values():
            cells.extend(images[prompt])
    grid = make_grid(np.stack(cells), rows=len(shown))
    return grid.repeat(2, axis=0).repeat(2, axis=1), [prompts[p] for p in shown]


def format_table(report):
    """Markdown table of the report's rows (an Inception FID column when it was measured)."""
    def number(value, digits=3):
        return "–" if value is None else f"{value:.{digits}f}"

    inception = any("fid_inception" in row for row in report["rows"].values())
    headers = [f"R-precision (top-1 of {report['r_precision_candidates']})",
               "FID (in-domain encoder)", "KID ×1000", "diversity", "accepted", "tries / image"]
    headers += ["FID (Inception)"] if inception else []
    lines = ["| | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
    for label, row in report["rows"].items():
        kid = row.get("kid_in_domain")
        cells = [f"{row['r_precision']:.3f} ± {row['r_precision_std']:.3f}",
                 number(row.get("fid_in_domain"), 2),
                 "–" if kid is None else f"{1000 * kid:.1f} ± {1000 * row['kid_in_domain_std']:.1f}",
                 number(row["diversity"]), number(row.get("accepted"), 2),
                 number(row.get("tries_per_image"), 2)]
        cells += [number(row.get("fid_inception"), 2)] if inception else []
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_color_table(color):
    """Markdown table of a report's colour section: accuracy overall and per colour."""
    lines = ["| | colour accuracy | " + " | ".join(color["colors"]) + " |",
             "|---" * (len(color["colors"]) + 2) + "|"]
    for label, row in color["rows"].items():
        lines.append(f"| {label} | {row['accuracy']:.3f} | "
                     + " | ".join("–" if row["per_color"][c] is None
                                  else f"{row['per_color'][c]:.2f}" for c in color["colors"])
                     + " |")
    return "\n".join(lines)


def write_report(report, prompts, real_prompts, pictures, out):
    """Write report.json, report.md and report.png (atomically each)."""
    from data_loader import write_json
    from imaging import save_png

    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    stem = os.path.splitext(out)[0]
    grid, shown = report_picture(prompts, real_prompts, pictures)
    save_png(grid, stem + ".png")
    write_json(report, out)
    samples = report["samples_per_prompt"]
    labels = [label for label in pictures if label not in ("real", "color")]
    text = [f"# Evaluation ({report['split']} split)", "",
            f"{report['prompts']} prompts of {report['concepts']} concepts, "
            f"{report['real_images']} real images, {samples} samples per prompt; "
            f"R-precision over {report['repeats']} repeats; encoder `{report['encoder']}`. "
            "FID and KID are computed on the in-domain encoder's image features, "
            "not Inception's.", "", format_table(report), "",
            f"![samples]({os.path.basename(stem)}.png)", "",
            f"Rows: {', '.join(shown)}. Columns: a real image, then {samples} samples each of "
            f"{'; '.join(labels)}."]
    if "color" in report:
        color_prompts, color_images = pictures["color"]
        grid, shown = color_picture(color_prompts, color_images)
        save_png(grid, stem + "_color.png")
        text += ["", "## Colour accuracy", "",
                 f"{report['color']['prompts']} prompts (each recolourable concept's names with "
                 "each colour word), the dominant colour of the product's pixels against the "
                 f"prompt's; chance {report['color']['chance']:.3f}.", "",
                 format_color_table(report["color"]), "",
                 f"![colour samples]({os.path.basename(stem)}_color.png)", "",
                 f"Rows: {', '.join(shown)}. Columns: {samples} samples each of "
                 f"{'; '.join(list(color_images)[:2])}."]
    tmp = stem + ".md.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(text) + "\n")
    os.replace(tmp, stem + ".md")


def evaluate_parser():
    parser = argparse.ArgumentParser(description="Measure a run with the in-domain encoder.")
    parser.add_argument("--run", required=True, help="training run folder")
    parser.add_argument("--compare", nargs="*", default=[], help="more runs to measure alike")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="trained dual encoder")
    parser.add_argument("--split", default="test", help="manifest split (\"\" = all rows)")
    parser.add_argument("--out", default="report.json")
    parser.add_argument("--samples-per-prompt", type=int, default=4)
    parser.add_argument("--max-tries", type=int, default=8, help="the gate's budget")
    parser.add_argument("--repeats", type=int, default=5, help="R-precision repeats")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inception-weights",
                        help="a local InceptionV3 weights file: adds true (Inception) FID")
    return parser


def main(argv=None):
    """CLI: `train-encoder ...` or an evaluation; returns the encoder folder or the report."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train-encoder"]:
        from data_loader import ManifestError

        parser = encoder_parser()
        config = EncoderConfig(**vars(parser.parse_args(argv[1:])))
        try:
            out = train_encoder(config)
        except ManifestError as error:
            parser.exit(1, f"evaluate: {error}\n")
        print(f"evaluate: encoder saved in {out}")
        return out
    parser = evaluate_parser()
    args = parser.parse_args(argv)
    if args.samples_per_prompt < 2:
        parser.error("--samples-per-prompt must be at least 2 (diversity needs pairs)")
    try:
        report, prompts, real_prompts, pictures = evaluate_runs(
            [args.run, *args.compare], args.encoder, args.split, args.samples_per_prompt,
            args.max_tries, args.repeats, args.seed, inception_weights=args.inception_weights)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(1, f"evaluate: {error}\n")
    write_report(report, prompts, real_prompts, pictures, args.out)
    print(format_table(report))
    if "color" in report:
        print(format_color_table(report["color"]))
    print(f"evaluate: wrote {args.out}, {os.path.splitext(args.out)[0]}.md and .png")
    return report


if __name__ == "__main__":
    main()
