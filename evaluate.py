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
        config.split or None, {"group": config.groups, "style": config.styles})
    vocabulary = data_loader.build_vocabulary(
        [c for captions in examples["captions"] for c in captions], config.max_vocabulary)
    keras.utils.set_random_seed(config.seed)
    encoder = DualEncoder(vocabulary, config.image_size, config.sequence_length,
                          config.embedding_dim, config.text_hidden_units, config.image_channels,
                          seed=config.seed)
    encoder.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    dataset = data_loader.make_dataset(examples, config.image_size,
                                       min(config.batch_size, len(examples)),
                                       seed=config.seed, vectorizer=encoder.vectorizer)
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


# ----------------------------------------------------------------------------- metrics

def frechet_distance(a, b):
    """Fréchet distance between Gaussians fitted to feature sets a [N, D] and b [M, D].

    Tr(sqrt(Ca Cb)) is computed as the trace of sqrt(Ca^1/2 Cb Ca^1/2), a symmetric
    PSD matrix, so numpy's eigh suffices (no scipy).
    """
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b)
                 - 2 * trace_root)


def kernel_inception_distance(a, b, subset_size=100, subsets=20, seed=0):
    """KID: unbiased MMD^2 with the cubic kernel (x.y / D + 1)^3, mean and std over subsets."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(a), len(b))
    dim = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / dim + 1) ** 3, (y @ y.T / dim + 1) ** 3,
                         (x @ y.T / dim + 1) ** 3)
        off = size * (size - 1)
        values.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off
                      - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def r_precision(image_codes, true_prompt, prompt_vectors, prompt_concept, candidates=100,
                repeats=5, seed=0):
    """Top-1 rate of each image's prompt among `candidates` prompts (the rest of other concepts).

    image_codes [N, T] and prompt_vectors [P, T] are unit vectors; true_prompt [N]
    indexes prompt_vectors; prompt_concept [P] names each prompt's concept, so a
    prompt's translation is never drawn as a negative. Returns (mean, std) over repeats.
    """
    rng = np.random.default_rng(seed)
    prompt_concept = np.asarray(prompt_concept)
    rates = []
    for _ in range(repeats):
        hits = []
        for code, prompt in zip(image_codes, true_prompt):
            others = np.flatnonzero(prompt_concept != prompt_concept[prompt])
            negatives = rng.choice(others, min(candidates - 1, len(others)), replace=False)
            scores = prompt_vectors[np.concatenate([[prompt], negatives])] @ code
            hits.append(scores[0] > scores[1:].max())
        rates.append(np.mean(hits))
    return float(np.mean(rates)), float(np.std(rates))


def diversity(features, groups):
    """Mean pairwise Euclidean distance of unit features within each group, averaged."""
    unit = features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-12)
    means = []
    for group in np.unique(groups):
        members = unit[np.asarray(groups) == group]
        if len(members) > 1:
            distances = np.linalg.norm(members[:, None] - members[None], axis=-1)
            means.append(distances[np.triu_indices(len(members), 1)].mean())
    return float(np.mean(means)) if means else None


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


def distance_features(features):
    """Pooled features scaled to norm sqrt(D): every coordinate O(1), as KID's kernel expects.

    The raw pooled activations have no fixed scale (they grow with training), which
    would make FID and KID incomparable between encoders.
    """
    norms = np.linalg.norm(features, axis=1, keepdims=True) + 1e-12
    return features / norms * np.sqrt(features.shape[1])


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
    report = {"split": split or "all", "runs": [os.path.abspath(r) for r in run_dirs],
              "encoder": os.path.abspath(encoder_dir), "prompts": len(prompts),
              "concepts": int(len(np.unique(prompt_concept))), "real_images": len(real_images),
              "samples_per_prompt": per_prompt,
              "r_precision_candidates": int(min(100, 1 + min(
                  np.sum(prompt_concept != c) for c in prompt_concept))),
              "repeats": repeats, "caption_columns": list(caption_columns),
              "runs_sharing_the_evaluator_text_encoder": [os.path.abspath(r) for r in coupled],
              "rows": rows}
    return report, prompts, real_prompts, pictures


def report_picture(prompts, real_prompts, pictures, count=8):
    """uint8 grid, enlarged 2x: one row per prompt (the first `count`): a real image, then
    the samples of each generated row of the report."""
    from imaging import make_grid

    real = pictures["real"]
    first_real = {}
    for image_index, prompt_indices in enumerate(real_prompts):
        for prompt in prompt_indices:
            first_real.setdefault(prompt, image_index)
    shown = [p for p in range(len(prompts)) if p in first_real][:count]
    cells = []
    for prompt in shown:
        cells.append(real[first_real[prompt]])
        for label, images in pictures.items():
            if label != "real":
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
    labels = [label for label in pictures if label != "real"]
    text = [f"# Evaluation ({report['split']} split)", "",
            f"{report['prompts']} prompts of {report['concepts']} concepts, "
            f"{report['real_images']} real images, {samples} samples per prompt; "
            f"R-precision over {report['repeats']} repeats; encoder `{report['encoder']}`. "
            "FID and KID are computed on the in-domain encoder's image features, "
            "not Inception's.", "", format_table(report), "",
            f"![samples]({os.path.basename(stem)}.png)", "",
            f"Rows: {', '.join(shown)}. Columns: a real image, then {samples} samples each of "
            f"{'; '.join(labels)}."]
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
    print(f"evaluate: wrote {args.out}, {os.path.splitext(args.out)[0]}.md and .png")
    return report


if __name__ == "__main__":
    main()
