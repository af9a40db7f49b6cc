"""Export a trained run as a TF Serving SavedModel (raw text in, gated PNG images out).

    python export.py --run RUN --export-dir EXPORT [--version N]
    python export.py --run RUN --release models/adgan   # the slim folder the repository ships

writes EXPORT/<N>/ (the SavedModel; N = the next free version unless given; an existing version
is never overwritten) and EXPORT/<N>.keras (the Keras model) beside it, both under temporary
names then renamed, so a crash leaves no half version for TF Serving to load. Without --run it
exports the shipped model (models/adgan). `--release DIR` writes instead the slim copy of a run
that drawing needs (`write_release`): how models/adgan is made (with `--catalogue all`: its
exemplar bank holds every product of the run's manifest, the held-out ones too).

Signatures (the tokenizer, the gate and PNG encoding are inside the graph):
  serving_default: text string[B], seed int64[B] (optional: random if left out),
      num_candidates int64[1 or B] (optional: the gate's budget, default --num-candidates)
      -> images uint8[B, S, S, 3] (S: --size, by default 4N, 256 px for the shipped
         model, which draws at N = 64), png string[B] (base64 text of the PNG file: REST JSON
         carries it as is, and "data:image/png;base64," + png shows it in a browser),
         png_bytes string[B] (the raw PNG file; TF Serving's REST API turns outputs named
         *_bytes into {"b64": ...}), score float32[B] (the gate's score of the returned
         image, in [0, 1]), accepted bool[B], tries int32[B], drawn_as and ignored string[B]
         (what was read of the prompt: "coat (nearest kin of 羽绒服) · black", "限时特惠 新款")
  draw: text string[B], seed int64[B] (optional) -> images, png, png_bytes, drawn_as, ignored:
      no gate (the generator alone; the same image as serving_default's first candidate)
  generate_at_size, draw_at_size: the same with one more input, size int64[1] (optional:
      the picture side, one of N, 2N, 4N -- 64, 128, 256 for the shipped model)
  score: text string[B], images uint8[B, S, S, 3] (S any of the output sizes; area-reduced
      to N for the discriminator) -> score float32[B] (the picture judged against the whole
      text, also for a bundle; `generate` scores a composed bundle by its products)
The model draws at N px; 2N and 4N come from the run's learned up-sampler (upsampler.keras,
train_upsampler.py) inside the graph, or from Lanczos + an unsharp mask for a run without one
(export_info.json's `upsampler` says which). A text that names none of the run's drawing styles
(export_info.json's `style_words`: "3d", "立体", ...) is drawn in the style its seed picks, so
the draws of one prompt differ in style as real renderings do (styles.vary_style); put a style
word in the text to fix the style. A text that names two or three products ("咖啡和蛋糕",
"burger with fries") is drawn product by product, each gated, and composed side by side
(composition.py; `composes_bundles`); its score is the lowest of its products', its tries their
sum. A prompt is first read as a shop wrote it (understanding.py, `reads_prompts`): product(s),
colour and style drawn, the rest ignored and reported; one that names no product ("限时特惠
包邮") is refused, as is other bad input (InvalidArgument). Every PNG (png, png_bytes) carries
the AI-generated labels inside the served bytes (labels.py: GB 45438's AIGC JSON and IPTC XMP,
--producer their ContentProducer), so a TF Serving client gets labelled files without adgan
code; `adgan-label` checks them.
"""

import argparse
import os
import re
import shutil

import adgan  # noqa: F401  (first: TensorFlow starts quietly, adgan/quiet.py)
import tensorflow as tf

from adgan import labels
from adgan.drawing.sampling import (DEFAULT_MAX_TRIES, drawn_colors, drawn_requests, finished,
                                    gated_generate, judge_score, judged_texts, read_requests,
                                    understood, ungated_generate)
from adgan.helpers import atomic_path, remove_stale_temporaries, run_command, write_json
from adgan.runs.layout import run_or_shipped, run_path
from adgan.runs.release import CATALOGUES, export_info_path, write_release
from adgan.runs.run import Run
from adgan.upsampling.upsampler import output_sizes
from data_loader import to_float_tensor


def existing_versions(export_dir):
    """Version numbers already used in `export_dir` (SavedModel folders and .keras files)."""
    if not os.path.isdir(export_dir):
        return set()
    return {int(m.group(1)) for name in os.listdir(export_dir)
            if (m := re.fullmatch(r"(\d+)(\.keras)?", name))}


def text_checks(text, token_ids, reading=None):
    """Assertions on a text batch (`token_ids`: of the texts drawn; `reading`: what a prompt
    reader made of them, if any); each fails with InvalidArgument naming the problem."""
    stripped = tf.strings.strip(text)
    known = tf.reduce_sum(tf.cast(token_ids > 1, tf.int32), axis=1)  # 0 pad, 1 unknown
    unread = (stripped != "") & (False if reading is None else ~reading["drawable"])
    unknown = (stripped != "") & ~unread & (known == 0)
    return [
        tf.debugging.assert_positive(tf.size(text), message="text: the batch is empty; "
                                                            "send at least one prompt"),
        tf.debugging.Assert(tf.reduce_all(stripped != ""), [
            "text: empty or whitespace-only prompt at index", tf.where(stripped == "")[:, 0]]),
        tf.debugging.Assert(tf.reduce_all(~unread), [
            "text: names no product this model can draw (e.g. \"黑色羽绒服\", \"running "
            "shoes\"): the prompt at index", tf.where(unread)[:, 0], "has only words that "
            "name none:", tf.boolean_mask(text if reading is None else reading["ignored"],
                                          unread)], summarize=8),
        tf.debugging.Assert(tf.reduce_all(~unknown), [
            "text: no known token (the model's vocabulary has none of its words or "
            "characters) in the prompt at index", tf.where(unknown)[:, 0]]),
    ]


def seed_checks(batch, seed):
    """Assertions on the optional `seed` input."""
    return [tf.debugging.Assert(tf.logical_or(tf.size(seed) == 0, tf.size(seed) == batch), [
        "seed: give one seed per prompt (or none); got", tf.size(seed),
        "seeds for", batch, "prompts"])]


def request_checks(batch, seed, num_candidates, max_candidates):
    """Assertions on the optional `seed` and `num_candidates` inputs."""
    return seed_checks(batch, seed) + [
        tf.debugging.Assert(tf.reduce_any(tf.size(num_candidates) == [0, 1, batch]), [
            "num_candidates: give one value, or one per prompt; got", tf.size(num_candidates),
            "for", batch, "prompts"]),
        tf.debugging.Assert(tf.reduce_all((num_candidates >= 1)
                                          & (num_candidates <= max_candidates)), [
            f"num_candidates: must be between 1 and {max_candidates}; got", num_candidates],
            summarize=8),
    ]


def image_checks(text, images, sizes):
    """Assertions on the `score` signature's images: uint8[batch, s, s, 3], one per text, s one
    of the model's output `sizes`."""
    shape = tf.shape(images)
    padded = tf.concat([shape, tf.zeros([4], tf.int32)], 0)[:4]  # any rank compares safely
    well_formed = ((tf.size(shape) == 4) & (padded[1] == padded[2]) & (padded[3] == 3)
                   & tf.reduce_any(padded[1] == sizes) & (padded[0] == tf.size(text)))
    return [tf.debugging.Assert(well_formed, [
        f"images: expected uint8[batch, s, s, 3] with s one of {', '.join(map(str, sizes))} "
        "and one image per text; got shape", shape, "for", tf.size(text), "texts"],
        summarize=8)]


def size_checks(size, sizes):
    """Assertions on the optional `size` input: none, or one of the model's output sizes."""
    return [tf.debugging.Assert((tf.size(size) <= 1) & tf.reduce_all(
        tf.reduce_any(size[:, None] == tf.constant(sizes, tf.int64)[None], axis=1)), [
        f"size: give one value, one of {', '.join(map(str, sizes))} (or none for the "
        "default); got", size], summarize=8)]


def requested_size(size, default_size):
    """The request's `size` (int64[0 or 1]), or the export's default when it gave none."""
    return tf.cond(tf.size(size) > 0, lambda: size[0],
                   lambda: tf.constant(default_size, tf.int64))


def standard_base64(data):
    """Standard (RFC 4648, padded) base64 text of byte strings, as a data: URL wants it."""
    web_safe = tf.io.encode_base64(data, pad=True)  # TF's alphabet uses - and _
    return tf.strings.regex_replace(tf.strings.regex_replace(web_safe, "-", "+"), "_", "/")


def seeds_or_random(seed, batch):
    """The request's seeds, or random ones when it gave none."""
    return tf.cond(tf.size(seed) > 0, lambda: seed,
                   lambda: tf.random.uniform([batch], 0, tf.int64.max, tf.int64))


def picture_outputs(images, producer=labels.DEFAULT_PRODUCER):
    """uint8 images [B, S, S, 3] -> the `images`, `png` (base64 text) and `png_bytes` outputs;
    each PNG carries the AI-generated labels (labels.py) with `producer` as ContentProducer."""
    png_bytes = labels.label_png_in_graph(
        tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string), images, producer)
    return {"images": images, "png": standard_base64(png_bytes), "png_bytes": png_bytes}


TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
SEED_SPEC = tf.TensorSpec([None], tf.int64, name="seed")
CANDIDATES_SPEC = tf.TensorSpec([None], tf.int64, name="num_candidates")
SIZE_SPEC = tf.TensorSpec([None], tf.int64, name="size")


def build_serving_module(gan, gate, default_candidates, max_candidates, style_words=None,
                         upsampler=None, default_size=None, splitter=None,
                         producer=labels.DEFAULT_PRODUCER, reader=None):
    """A `tf.Module` with the functions of the SavedModel's signatures. `generate_at_size`
    and `draw_at_size` draw as `sampling.GatedSampler` does: prompts read by `reader`, the
    style varied by seed (`style_words`), bundles split by `splitter` and composed, the
    request's `size` (`output_sizes`) enlarged by `upsampler`; `generate` and `draw` are the
    same without the size input (`default_size`, else the largest). Every PNG is labelled
    AI-generated, `producer` its ContentProducer (labels.py)."""
    sizes = output_sizes(gan.image_size)
    none = tf.zeros([0], tf.int64)  # an optional input left out

    def split(text, seeds, budgets):  # -> the texts, seeds and budgets drawn, and the layout
        return drawn_requests(text, seeds, budgets, style_words or {}, splitter)

    def sized(out, size, layout, reading):  # enlarged, recoloured, composed, encoded
        out = finished(out, requested_size(size, default_size or sizes[-1]), upsampler, layout,
                       drawn_colors(reading, layout))
        return {**out, **picture_outputs(out["images"], producer), **understood(reading)}

    @tf.function(input_signature=[TEXT_SPEC, SEED_SPEC, CANDIDATES_SPEC, SIZE_SPEC])
    def generate_at_size(text, seed=none, num_candidates=none, size=none):
        read, reading = read_requests(reader, text)
        token_ids = gan.vectorizer(read)  # truncates over-long text to the model's length
        batch = tf.size(text)
        with tf.control_dependencies(text_checks(text, token_ids, reading)
                                     + size_checks(size, sizes)
                                     + request_checks(batch, seed, num_candidates,
                                                      max_candidates)):
            budgets = tf.cond(tf.size(num_candidates) > 0,
                              lambda: tf.broadcast_to(num_candidates, [batch]),
                              lambda: tf.fill([batch], tf.constant(default_candidates, tf.int64)))
            texts, seeds, budgets, layout = split(read, seeds_or_random(seed, batch), budgets)
            out = gated_generate(gan, gan.vectorizer(texts), seeds, budgets, gate,
                                 colors=drawn_colors(reading, layout))
            return sized(out, size, layout, reading)

    @tf.function(input_signature=[TEXT_SPEC, SEED_SPEC, SIZE_SPEC])
    def draw_at_size(text, seed=none, size=none):
        # No gate: the generator alone, for the lowest latency (the first candidate
        # `generate` would judge, so the same seed gives the same image).
        read, reading = read_requests(reader, text)
        token_ids = gan.vectorizer(read)
        batch = tf.size(text)
        with tf.control_dependencies(text_checks(text, token_ids, reading)
                                     + seed_checks(batch, seed) + size_checks(size, sizes)):
            seeds = seeds_or_random(seed, batch)
            texts, seeds, _, layout = split(read, seeds, tf.ones_like(seeds))
            return sized({"images": ungated_generate(gan, gan.vectorizer(texts), seeds)}, size,
                         layout, reading)

    return serving_module(gan, {
        "generate": tf.function(lambda text, seed=none, num_candidates=none: generate_at_size(
            text, seed, num_candidates), input_signature=[TEXT_SPEC, SEED_SPEC, CANDIDATES_SPEC]),
        "draw": tf.function(lambda text, seed=none: draw_at_size(text, seed),
                            input_signature=[TEXT_SPEC, SEED_SPEC]),
        "generate_at_size": generate_at_size, "draw_at_size": draw_at_size,
        "score": score_function(gan, gate, sizes, reader)},
        [part.table for part in (splitter, reader) if part is not None])


def score_function(gan, gate, sizes, reader=None):
    """The `score` signature's function: (text, uint8 images of any output size) -> score,
    the picture judged against the text as drawn (as `reader` reads it, where it reads a
    product)."""

    @tf.function(input_signature=[TEXT_SPEC, tf.TensorSpec([None, None, None, None], tf.uint8,
                                                           name="images")])
    def score(text, images):
        token_ids = gan.vectorizer(judged_texts(reader, text))
        with tf.control_dependencies(text_checks(text, token_ids)
                                     + image_checks(text, images, sizes)):
            native = tf.image.resize(to_float_tensor(images), (sizes[0], sizes[0]), "area")
            return {"score": judge_score(gan, token_ids, native, gate)}

    return score


def serving_module(gan, functions, tables=()):
    """A `tf.Module` holding `functions` {name: tf.function} and what their graphs use
    (`tables`: lookup tables they use besides the tokenizer's)."""
    module = tf.Module()
    for name, function in functions.items():
        setattr(module, name, function)
    # Keras 3 variables are not tracked through layers by tf.saved_model.save: track the
    # tf.Variables the graphs capture (as keras.export.ExportArchive does), and the
    # tokenizer's lookup table, or TF Serving finds them uninitialised.
    variables = {id(v): v for function in functions.values()
                 for v in function.get_concrete_function().variables}
    module.captured_variables = list(variables.values())
    module.lookup_tables = [t for t in tf.train.TrackableView(gan.vectorizer).descendants()
                            if isinstance(t, tf.saved_model.experimental.TrackableResource)
                            ] + list(tables)
    return module


def export_info(run, num_candidates, max_candidates, default_size, producer):
    """What assets.extra/adgan.json records of an export of `run` (`read_export_info`)."""
    gan, calibration = run.model, run.calibration
    return {"run": os.path.abspath(run.folder), "image_size": gan.image_size,
            "sequence_length": gan.sequence_length, "num_candidates": num_candidates,
            "max_candidates": max_candidates,
            "gate": {"method": "min_score" if run.min_score is not None else "drs",
                     "gamma": calibration["gamma"] if run.gamma is None else run.gamma,
                     "min_score": run.min_score, "shift": run.gate.shift},
            "calibration": {k: v for k, v in calibration.items() if k != "fake_log_odds"},
            # the words a client puts in its text to ask for a drawing style; a text
            # without one is drawn in the style its seed picks (styles.vary_style)
            "style_words": {s: list(w) for s, w in run.style_words.items()},
            "varies_style": bool(run.style_words),
            # the `size` a request may ask for, the one it gets by default, and how the
            # native picture is enlarged ("learned": the run's upsampler.keras)
            "sizes": list(output_sizes(gan.image_size)), "default_size": default_size,
            "upsampler": "learned" if run.upsampler is not None else "lanczos",
            "composes_bundles": run.splitter is not None,  # false: bundles in one pass
            # prompts read as shops write them (understanding.py): outputs drawn_as, ignored
            "reads_prompts": run.reader is not None,
            # every served PNG says it is AI-generated (GB 45438, IPTC; labels.py)
            "labels": {"producer": producer, "explicit": labels.NO_EXPLICIT}}


def export_run(run, export_dir, version=None, num_candidates=DEFAULT_MAX_TRIES,
               max_candidates=64, size=None, producer=None):
    """Export a finished, calibrated run (a `Run`, opened with the gate's `gamma` or
    `min_score` if not the calibrated rate); returns the new version folder. `size`: the
    picture size a request that names none gets (default the largest); `producer`: the
    ContentProducer of the served PNGs' labels (`labels.producer_name`)."""
    producer = labels.producer_name(producer)
    run.gate  # an uncalibrated run (or a bad --gamma) is refused first, saying why
    if not 1 <= num_candidates <= max_candidates:
        raise ValueError(f"--num-candidates must be in [1, --max-candidates={max_candidates}], "
                         f"got {num_candidates}")
    used = existing_versions(export_dir)
    version = max(used, default=0) + 1 if version is None else version
    if version < 1:
        raise ValueError(f"--version must be a positive integer, got {version}")
    if version in used:
        raise FileExistsError(f"{export_dir}/{version} exists; versions are never overwritten "
                              "(leave out --version to take the next free one)")
    sizes = output_sizes(run.model.image_size)
    if size is not None and size not in sizes:
        raise ValueError(f"--size must be one of {', '.join(map(str, sizes))}, got {size}")
    module = build_serving_module(run.model, run.gate, num_candidates, max_candidates,
                                  run.style_words, run.upsampler, size, run.splitter, producer,
                                  run.reader)

    os.makedirs(export_dir, exist_ok=True)
    for name in remove_stale_temporaries(export_dir):
        print(f"export: removed {os.path.join(export_dir, name)}, left by a killed export")
    final = os.path.join(export_dir, str(version))
    tmp = os.path.join(export_dir, f".tmp-{version}-{os.getpid()}")  # TF Serving skips it
    try:
        tf.saved_model.save(module, tmp, signatures={
            "serving_default": module.generate, "draw": module.draw, "score": module.score,
            "generate_at_size": module.generate_at_size, "draw_at_size": module.draw_at_size})
        info = export_info(run, num_candidates, max_candidates, size or sizes[-1], producer)
        os.makedirs(os.path.dirname(export_info_path(tmp)), exist_ok=True)
        write_json(info, export_info_path(tmp))
        with atomic_path(os.path.join(export_dir, f"{version}.keras")) as keras_tmp:
            shutil.copyfile(run_path(run.folder, "model"), keras_tmp)
        os.replace(tmp, final)  # last: the folder TF Serving watches appears complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="finished training run folder (default: the shipped "
                                      "model, models/adgan)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--export-dir",
                        help="TF Serving model base path (versions go in numbered folders)")
    target.add_argument("--release", help="write the run's slim copy for drawing here instead "
                                          "(models/adgan is the shipped one)")
    parser.add_argument("--catalogue", choices=CATALOGUES, default="trained",
                        help="with --release: the exemplar bank the release retrieves from: "
                             "the run's training drawings (trained), or every row of its "
                             "manifest in its groups and styles, held-out products too (all)")
    parser.add_argument("--version", type=int, help="version number (default: next free)")
    parser.add_argument("--num-candidates", type=int, default=DEFAULT_MAX_TRIES,
                        help="the gate's budget when a request gives none")
    parser.add_argument("--max-candidates", type=int, default=64,
                        help="the largest num_candidates a request may ask for")
    parser.add_argument("--gamma", type=float,
                        help="DRS target acceptance rate (default: the run's calibration)")
    parser.add_argument("--min-score", type=float,
                        help="gate by a fixed score threshold in [0, 1] instead of DRS")
    parser.add_argument("--size", type=int,
                        help="picture side a request gets when it names none: the model's "
                             "size or 2x or 4x it (64, 128, 256; default the largest)")
    labels.add_producer_flag(parser)
    return parser


def main(argv=None):
    """CLI entry point; returns the version folder written."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        parser.error(f"--min-score must be in [0, 1], got {args.min_score}")
    try:
        run = run_or_shipped(args.run)
        if args.release:
            path = write_release(run, args.release, args.catalogue)
            size = sum(os.path.getsize(os.path.join(folder, name))
                       for folder, _, names in os.walk(path) for name in names)
            print(f"export: wrote {path} ({size / 2**20:.1f} MiB): what drawing needs of {run}")
            return path
        path = export_run(Run(run, gamma=args.gamma, min_score=args.min_score), args.export_dir,
                          args.version, args.num_candidates, args.max_candidates, args.size,
                          args.producer)
    except (FileNotFoundError, FileExistsError, OSError, ValueError) as error:
        parser.exit(1, f"export: {error}\n")
    print(f"export: wrote {path} (SavedModel, signatures serving_default, draw and score) and "
          f"{path}.keras")
    return path


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "export")


if __name__ == "__main__":
    console_main()
