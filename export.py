"""Export a trained run as a TF Serving SavedModel (raw text in, gated PNG images out).

    python export.py --run RUN --export-dir EXPORT [--version N]
    python export.py --run RUN --release models/adgan   # the slim folder the repository ships

writes EXPORT/<N>/ (the SavedModel; N = the next free version unless given; an
existing version is never overwritten) and EXPORT/<N>.keras (the Keras model)
beside it. Both are written under temporary names and renamed, so a crash leaves
no half version for TF Serving to load. Without --run it exports the shipped model
(models/adgan). `--release DIR` writes instead the slim copy of a run that drawing
needs (`runs.write_release`): how models/adgan is made.

Signatures (the tokenizer, the gate and PNG encoding are inside the graph):
  serving_default: text string[B], seed int64[B] (optional: random if left out),
      num_candidates int64[1 or B] (optional: the gate's budget, default --num-candidates)
      -> images uint8[B, S, S, 3], png string[B] (base64 text of the PNG file: REST JSON
         carries it as is, and "data:image/png;base64," + png shows it in a browser),
         png_bytes string[B] (the raw PNG file; TF Serving's REST API turns outputs named
         *_bytes into {"b64": ...}), score float32[B] (the gate's score of the returned
         image, in [0, 1]), accepted bool[B], tries int32[B]
  draw: text string[B], seed int64[B] (optional) -> images, png, png_bytes: no gate (the
      generator alone, fastest; the same image as serving_default's first candidate)
  score: text string[B], images uint8[B, S, S, 3] -> score float32[B]
A text that names none of the run's drawing styles (export_info.json's
`style_words`: "3d", "立体", ...) is drawn in the style its seed picks, so the draws
of one prompt differ in style as real renderings do (styles.vary_style); put a style
word in the text to fix the style. Bad input raises InvalidArgument naming the problem.
"""

import argparse
import os
import re
import shutil

import tensorflow as tf

import runs
from data_loader import to_float_tensor, to_uint8_tensor
from helpers import atomic_path, write_json
from sampling import DEFAULT_MAX_TRIES, Gate, gated_generate, judge_score, ungated_generate
from styles import vary_style


def existing_versions(export_dir):
    """Version numbers already used in `export_dir` (SavedModel folders and .keras files)."""
    if not os.path.isdir(export_dir):
        return set()
    return {int(m.group(1)) for name in os.listdir(export_dir)
            if (m := re.fullmatch(r"(\d+)(\.keras)?", name))}


def text_checks(text, token_ids):
    """Assertions on a text batch; each fails with InvalidArgument naming the problem."""
    stripped = tf.strings.strip(text)
    known = tf.reduce_sum(tf.cast(token_ids > 1, tf.int32), axis=1)  # 0 pad, 1 unknown
    return [
        tf.debugging.assert_positive(tf.size(text), message="text: the batch is empty; "
                                                            "send at least one prompt"),
        tf.debugging.Assert(tf.reduce_all(stripped != ""), [
            "text: empty or whitespace-only prompt at index", tf.where(stripped == "")[:, 0]]),
        tf.debugging.Assert(tf.reduce_all(known > 0), [
            "text: no known token (the model's vocabulary has none of its words or "
            "characters) in the prompt at index", tf.where(known == 0)[:, 0]]),
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


def image_checks(text, images, size):
    """Assertions on the `score` signature's images: uint8[batch, size, size, 3], one per text."""
    shape = tf.shape(images)
    padded = tf.concat([shape, tf.zeros([4], tf.int32)], 0)[:4]  # any rank compares safely
    well_formed = ((tf.size(shape) == 4) & tf.reduce_all(padded[1:] == [size, size, 3])
                   & (padded[0] == tf.size(text)))
    return [tf.debugging.Assert(well_formed, [
        f"images: expected uint8[batch, {size}, {size}, 3] with one image per text; got "
        "shape", shape, "for", tf.size(text), "texts"], summarize=8)]


def standard_base64(data):
    """Standard (RFC 4648, padded) base64 text of byte strings, as a data: URL wants it."""
    web_safe = tf.io.encode_base64(data, pad=True)  # TF's alphabet uses - and _
    return tf.strings.regex_replace(tf.strings.regex_replace(web_safe, "-", "+"), "_", "/")


def seeds_or_random(seed, batch):
    """The request's seeds, or random ones when it gave none."""
    return tf.cond(tf.size(seed) > 0, lambda: seed,
                   lambda: tf.random.uniform([batch], 0, tf.int64.max, tf.int64))


def picture_outputs(images):
    """uint8 images [B, S, S, 3] -> the `images`, `png` (base64 text) and `png_bytes` outputs."""
    png_bytes = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
    return {"images": images, "png": standard_base64(png_bytes), "png_bytes": png_bytes}


def build_serving_module(gan, gate, default_candidates, max_candidates, style_words=None):
    """A `tf.Module` with the `generate`, `draw` and `score` functions of the SavedModel.

    With `style_words` (the run's), `generate` and `draw` vary the style of texts that
    name none, by seed (`styles.vary_style`), as `sampling.GatedSampler` does.
    """
    size = gan.image_size

    def styled_token_ids(text, seeds):
        return gan.vectorizer(vary_style(text, seeds, style_words or {}))

    text_spec = tf.TensorSpec([None], tf.string, name="text")
    seed_spec = tf.TensorSpec([None], tf.int64, name="seed")

    @tf.function(input_signature=[text_spec, seed_spec,
                                  tf.TensorSpec([None], tf.int64, name="num_candidates")])
    def generate(text, seed=tf.zeros([0], tf.int64), num_candidates=tf.zeros([0], tf.int64)):
        token_ids = gan.vectorizer(text)  # truncates over-long text to the model's length
        batch = tf.size(text)
        with tf.control_dependencies(text_checks(text, token_ids) + request_checks(
                batch, seed, num_candidates, max_candidates)):
            budgets = tf.cond(tf.size(num_candidates) > 0,
                              lambda: tf.broadcast_to(num_candidates, [batch]),
                              lambda: tf.fill([batch], tf.constant(default_candidates, tf.int64)))
            seeds = seeds_or_random(seed, batch)
            out = gated_generate(gan, styled_token_ids(text, seeds), seeds, budgets, gate)
            pictures = picture_outputs(to_uint8_tensor(out["images"]))
        return {**pictures, "score": out["score"], "accepted": out["accepted"],
                "tries": out["tries"]}

    @tf.function(input_signature=[text_spec, seed_spec])
    def draw(text, seed=tf.zeros([0], tf.int64)):
        # No gate: the generator alone, for the lowest latency (the first candidate
        # `generate` would judge, so the same seed gives the same image).
        token_ids = gan.vectorizer(text)
        batch = tf.size(text)
        with tf.control_dependencies(text_checks(text, token_ids) + seed_checks(batch, seed)):
            seeds = seeds_or_random(seed, batch)
            images = ungated_generate(gan, styled_token_ids(text, seeds), seeds)
            return picture_outputs(to_uint8_tensor(images))

    @tf.function(input_signature=[text_spec, tf.TensorSpec([None, None, None, None], tf.uint8,
                                                           name="images")])
    def score(text, images):
        token_ids = gan.vectorizer(text)
        with tf.control_dependencies(text_checks(text, token_ids)
                                     + image_checks(text, images, size)):
            return {"score": judge_score(gan, token_ids, to_float_tensor(images), gate)}

    return serving_module(gan, {"generate": generate, "draw": draw, "score": score})


def serving_module(gan, functions):
    """A `tf.Module` holding `functions` {name: tf.function} and what their graphs use."""
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
                            if isinstance(t, tf.saved_model.experimental.TrackableResource)]
    return module


def export_run(run_dir, export_dir, version=None, gamma=None, min_score=None,
               num_candidates=DEFAULT_MAX_TRIES, max_candidates=64):
    """Export a finished, calibrated run; returns the new version folder."""
    calibration = runs.load_calibration(run_dir)
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
    gan = runs.load_model(run_dir)
    gate = Gate.from_calibration(calibration, gamma, min_score)
    style_words = runs.load_style_words(run_dir)
    module = build_serving_module(gan, gate, num_candidates, max_candidates, style_words)

    os.makedirs(export_dir, exist_ok=True)
    final = os.path.join(export_dir, str(version))
    tmp = os.path.join(export_dir, f".tmp-{version}-{os.getpid()}")  # TF Serving skips it
    try:
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.generate,
                                                     "draw": module.draw,
                                                     "score": module.score})
        info = {"run": os.path.abspath(run_dir), "image_size": gan.image_size,
                "sequence_length": gan.sequence_length, "num_candidates": num_candidates,
                "max_candidates": max_candidates,
                "gate": {"method": "min_score" if min_score is not None else "drs",
                         "gamma": calibration["gamma"] if gamma is None else gamma,
                         "min_score": min_score, "shift": gate.shift},
                "calibration": {k: v for k, v in calibration.items() if k != "fake_log_odds"},
                # the words a client puts in its text to ask for a drawing style; a text
                # without one is drawn in the style its seed picks (styles.vary_style)
                "style_words": {s: list(w) for s, w in style_words.items()},
                "varies_style": bool(style_words)}
        os.makedirs(os.path.dirname(runs.export_info_path(tmp)), exist_ok=True)
        write_json(info, runs.export_info_path(tmp))
        with atomic_path(os.path.join(export_dir, f"{version}.keras")) as keras_tmp:
            shutil.copyfile(runs.path(run_dir, "model"), keras_tmp)
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
    parser.add_argument("--version", type=int, help="version number (default: next free)")
    parser.add_argument("--num-candidates", type=int, default=DEFAULT_MAX_TRIES,
                        help="the gate's budget when a request gives none")
    parser.add_argument("--max-candidates", type=int, default=64,
                        help="the largest num_candidates a request may ask for")
    parser.add_argument("--gamma", type=float,
                        help="DRS target acceptance rate (default: the run's calibration)")
    parser.add_argument("--min-score", type=float,
                        help="gate by a fixed score threshold in [0, 1] instead of DRS")
    return parser


def main(argv=None):
    """CLI entry point; returns the version folder written."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        parser.error(f"--min-score must be in [0, 1], got {args.min_score}")
    try:
        run = runs.run_or_shipped(args.run)
        if args.release:
            path = runs.write_release(run, args.release)
            size = sum(os.path.getsize(os.path.join(folder, name))
                       for folder, _, names in os.walk(path) for name in names)
            print(f"export: wrote {path} ({size / 2**20:.1f} MiB): what drawing needs of {run}")
            return path
        path = export_run(run, args.export_dir, args.version, args.gamma, args.min_score,
                          args.num_candidates, args.max_candidates)
    except (FileNotFoundError, FileExistsError, OSError, ValueError) as error:
        parser.exit(1, f"export: {error}\n")
    print(f"export: wrote {path} (SavedModel, signatures serving_default, draw and score) and "
          f"{path}.keras")
    return path


def console_main():
    """Entry point of the installed console script (its exit status is 0 on success)."""
    main()


if __name__ == "__main__":
    main()
