"""Benchmarks, run by hand: `python bench/run.py [--out FILE] [--only PARTS]`.

Each part runs in its own process (so its peak memory is its own) and prints JSON; each imports
only what it measures, inside its function, for the same reason:
- peak: float32 and bfloat16 throughput of this CPU: a 2048^2 matmul and a 3x3 convolution (64
  channels, 64x64, batch 32), the roofs the train step is held to;
- train: the `full` preset's 64x64 train step (G + D + text encoder, MA-GP every step, D's
  decoders, batch 32) on synthetic data, float32 and mixed bfloat16: images/s, its FLOP/s (TF's
  profiler) as a fraction of the float32 matmul and same-dtype convolution peaks; and the step
  without FastGAN's and MSGAN's additions (`dfgan_only`), to show what they cost;
- breakdown: where that step's time goes (float32, bfloat16): D and G steps, forward passes of
  text encoder, G and D, real pass with MA-GP, EMA update, each timed alone, with its FLOPs;
- pipeline: the tf.data loader alone on the shipped manifest at 64x64, batch 32;
- serve: the exported SavedModel (64 px drawn, 256 px out through an untrained up-sampler),
  float32 and bfloat16, one prompt and a batch of 64: gate off (`draw`), one judged candidate
  (num_candidates 1), the gate on (8 candidates, all drawn: its worst case);
- upsample: the learned 64 -> 256 up-sampler alone at batch 1 (and 16), float32 and bfloat16,
  beside Lanczos + unsharp mask in PIL; label: what the labels add to a PNG;
- recipe: the release recipes' train steps (`shipped`, and `instance`: instance conditioning
  and the wider generator tail), batch 16 at 64x64, float32 and bfloat16: images/s, epoch;
  read: the prompt reader alone (understanding.py, the shipped lexicon), ms a request.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from adgan.helpers import write_json  # noqa: E402  (light: no TensorFlow)
# the measuring tools (light too: each imports TensorFlow inside)
from measure import (conv_peak, graph_flops, matmul_peak, peak_memory_mb,  # noqa: E402
                     peak_part, timed)


def synthetic_gan(config):
    """(a GAN built from `config` under its precision, one synthetic batch of it)."""
    # deferred: a part imports only what it measures (its memory is its own)
    import numpy as np
    import tensorflow as tf

    from adgan.training import distribute
    import train

    distribute.set_precision(config.precision)
    vocabulary = [f"w{i}" for i in range(2000)]
    rng = np.random.default_rng(0)
    # instance conditioning: a bank of the shipped groups' size (625 products, 8 styles)
    products, slots = (625, 8) if config.exemplar_size else (0, 0)
    gan = train.build_gan(config, vocabulary, exemplar_shape=(products, slots, 0))
    if products:
        side = config.exemplar_size
        gan.exemplar_bank.fill(rng.integers(0, 256, (products, slots, side, side, 3), np.uint8),
                               np.ones((products, slots), np.float32),
                               rng.normal(size=(2 * products, 2 * config.text_hidden_units)))
    batch = {"token_ids": tf.constant(rng.integers(
                 2, 2000, (config.batch_size, config.sequence_length)), tf.int64),
             "images": tf.random.uniform((config.batch_size, config.image_size,
                                          config.image_size, 3), -1.0, 1.0),
             "concept_id": tf.range(config.batch_size, dtype=tf.int32) // 2,
             "product_id": tf.range(config.batch_size, dtype=tf.int32) // 2,
             "style_id": tf.range(config.batch_size, dtype=tf.int32) % 8}
    return gan, batch


def train_step_speed(config, steps):
    """(seconds per step, GFLOPs per step) of a config's train step on synthetic data."""
    # deferred: a part imports only what it measures (its memory is its own)
    import numpy as np
    import tensorflow as tf

    gan, batch = synthetic_gan(config)
    step = tf.function(gan.train_step)
    flops = graph_flops(step.get_concrete_function(batch))
    times = timed(lambda: [v.numpy() for v in step(batch).values()], steps)
    return float(np.median(times)), flops / 1e9


def breakdown_part(precision="float32", steps=5, preset="full"):
    """Where a preset's (`full`) train step spends its time: each piece compiled alone and
    timed (median of `steps` calls), with its GFLOPs and GFLOP/s. The D and G steps sum
    to the train step; the forward passes and the MA-GP pass show how much of each
    step is back-propagation and the penalty's double back-propagation."""
    # deferred: a part imports only what it measures (its memory is its own)
    import numpy as np
    import tensorflow as tf

    from adgan.training.config import resolve_config
    from adgan.training.distribute import update_moving_average

    config = resolve_config(["--preset", preset, "--precision", precision])
    gan, batch = synthetic_gan(config)
    token_ids, images, concepts = batch["token_ids"], batch["images"], batch["concept_id"]
    noise = tf.random.normal((config.batch_size, config.noise_dim))
    sentence, text_inputs = gan.text_inputs(token_ids)
    pieces = {
        "train_step": lambda: gan.train_step(batch)["d_loss"],
        "d_step": lambda: gan._discriminator_step(token_ids, images, noise, concepts)[2]["d_loss"],
        "g_step": lambda: gan._generator_step(text_inputs, noise, concepts)["g_loss"],
        "text_encoder_forward": lambda: gan.text_encoder(token_ids, training=True)[1],
        "generator_forward": lambda: gan.generator([noise, *text_inputs], training=True),
        "discriminator_forward": lambda: gan.discriminator.image_features(
            images, training=True)[0],
        "real_pair_with_gradient_penalty": lambda: gan._real_pair_with_penalty(
            images, sentence)[3],
        "ema_update": lambda: (update_moving_average(
            gan.ema_generator.weights, gan.generator.weights, 0.999), tf.zeros(()))[1],
    }
    results = {}
    for name, piece in pieces.items():
        function = tf.function(piece)
        flops = graph_flops(function.get_concrete_function()) / 1e9
        seconds = float(np.median(timed(lambda: function().numpy(), steps)))
        results[name] = {"seconds": seconds, "gflops": flops, "gflops_per_second": flops / seconds}
    for name in results:
        results[name]["fraction_of_train_step"] = (results[name]["seconds"]
                                                   / results["train_step"]["seconds"])
    return {"precision": precision, "batch_size": config.batch_size,
            "image_size": config.image_size, "pieces": results}


def train_part(precision="float32", steps=5):
    """images/s and FLOP/s of the full preset's train step in `precision`, and of the same
    step without the FastGAN/MSGAN additions."""
    # deferred: a part imports only what it measures (its memory is its own)
    import dataclasses

    from adgan.training.config import resolve_config

    config = resolve_config(["--preset", "full", "--precision", precision])
    seconds, gflops = train_step_speed(config, steps)
    plain = dataclasses.replace(config, augment_color=False, augment_cutout=0.0,
                                skip_excitation=False, reconstruction_weight=0.0,
                                mode_seeking_weight=0.0)
    plain_seconds, _ = train_step_speed(plain, steps)
    dtype = "bfloat16" if precision == "bfloat16" else "float32"
    peaks = {"matmul_float32": matmul_peak()["gflops"],
             f"conv3x3_{dtype}": conv_peak(dtype=dtype)["gflops"]}
    achieved = gflops / seconds
    return {"precision": precision, "batch_size": config.batch_size,
            "image_size": config.image_size, "seconds_per_step": seconds,
            "images_per_second": config.batch_size / seconds,
            "gflops_per_step": gflops, "achieved_gflops": achieved, "peaks_gflops": peaks,
            "fraction_of_matmul_float32_peak": achieved / peaks["matmul_float32"],
            f"fraction_of_conv3x3_{dtype}_peak": achieved / peaks[f"conv3x3_{dtype}"],
            "dfgan_only_images_per_second": config.batch_size / plain_seconds,
            "peak_memory_mb": peak_memory_mb()}


RECIPES = {"shipped": ["--preset", "shipped"], "instance": ["--preset", "instance"]}


def recipe_part(precision="float32", steps=5, recipes=RECIPES):
    """The new release's recipe (the `instance` preset: instance conditioning, the wider
    generator tail) beside the `shipped` preset's, train step on synthetic data at 64x64,
    batch 16: seconds a step, images/s, and an epoch of the shipped set (318 steps)."""
    # deferred: a part imports only what it measures (its memory is its own)
    from adgan.training.config import resolve_config

    results = {"precision": precision, "steps_per_epoch": 318}
    for name, flags in recipes.items():
        config = resolve_config(flags + ["--precision", precision])
        seconds, gflops = train_step_speed(config, steps)
        results[name] = {"batch_size": config.batch_size, "seconds_per_step": seconds,
                         "images_per_second": config.batch_size / seconds,
                         "seconds_per_epoch": 318 * seconds, "gflops_per_step": gflops}
    first, last = list(recipes)[0], list(recipes)[-1]
    results[f"{last}_over_{first}_time"] = (results[last]["seconds_per_step"]
                                            / results[first]["seconds_per_step"])
    results["peak_memory_mb"] = peak_memory_mb()
    return results


def pipeline_part(batches=200):
    """Examples/s of the loader alone (decoded and cached, as after the first epoch), plain
    and with one recoloured copy per clothing/vehicle row (`--color-augment 1`)."""
    # deferred: a part imports only what it measures (its memory is its own)
    from adgan.data import colors
    from adgan.text import tokenizer
    import data_loader

    examples, _ = data_loader.load_examples(data_loader.DEFAULT_MANIFEST, 64, split="train",
                                            recolorable={"subgroup": colors.DEFAULT_SUBGROUPS})
    vectorizer = tokenizer.make_text_vectorizer(
        tokenizer.examples_vocabulary(examples, 8000, color_augment=1), 16)
    results = {"batch_size": 32, "image_size": 64}
    for label, color_augment in (("examples_per_second", 0),
                                 ("examples_per_second_color_augment", 1)):
        dataset = data_loader.make_dataset(examples, 64, 32, repeat=True, vectorizer=vectorizer,
                                           color_augment=color_augment)
        iterator = iter(dataset)
        for _ in range(len(examples) // 32 + 2):  # first pass decodes and fills the cache
            next(iterator)
        started = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        results[label] = batches * 32 / (time.perf_counter() - started)
    results["peak_memory_mb"] = peak_memory_mb()
    return results


def serve_part(repeats=200, precision="float32", preset="full"):
    """Latency percentiles and batch throughput of the exported SavedModel of a preset's
    (`full`) model computing in `precision`."""
    # deferred: a part imports only what it measures (its memory is its own)
    import numpy as np
    import tensorflow as tf

    from adgan.drawing.gate import Gate
    from adgan.training import distribute
    from adgan.training.config import resolve_config
    from adgan.upsampling.upsampler import Upsampler
    import export
    import train

    config = resolve_config(["--preset", preset, "--precision", precision])
    distribute.set_precision(config.precision)
    gan = train.build_gan(config, ["red", "dress", "手", "机"])
    neutral = Gate(slope=1.0, intercept=0.0, max_log_odds=0.0, shift=0.0, min_score=1.0)
    module = export.build_serving_module(gan, neutral, default_candidates=1, max_candidates=64,
                                         upsampler=Upsampler())  # 256 px out, as shipped
    folder = tempfile.mkdtemp()
    tf.saved_model.save(module, folder, signatures={"serving_default": module.generate,
                                                    "draw": module.draw})
    del gan, module
    loaded = tf.saved_model.load(folder)
    results = {"precision": precision, "image_size": config.image_size}
    for label, signature, candidates in (("gate_off", "draw", None),
                                         ("one_judged_candidate", "serving_default", 1),
                                         ("gate_on_8_candidates", "serving_default", 8)):
        served = loaded.signatures[signature]

        def call(batch):
            request = {"text": tf.constant(["red dress"] * batch),
                       "seed": tf.range(batch, dtype=tf.int64)}
            if candidates:
                request["num_candidates"] = tf.constant([candidates], tf.int64)
            return served(**request)["png"].numpy()

        latencies = np.array(timed(lambda: call(1), repeats)) * 1000
        batch_seconds = np.median(timed(lambda: call(64), 5))
        results[label] = {"p50_ms": float(np.percentile(latencies, 50)),
                          "p95_ms": float(np.percentile(latencies, 95)),
                          "batch64_images_per_second": 64 / batch_seconds}
    results["peak_memory_mb"] = peak_memory_mb()
    return results


def upsample_part(precision="float32", repeats=200):
    """Milliseconds of one 64 -> 256 px up-sample at batch 1 (the shipped `Upsampler`'s shape,
    untrained weights: speed does not depend on them), compiled, computing in `precision`;
    pictures/s at batch 16; and Lanczos + unsharp mask in PIL on the same picture."""
    # deferred: a part imports only what it measures (its memory is its own)
    import keras
    import numpy as np
    import tensorflow as tf

    from adgan.upsampling import upsampler

    if precision == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = upsampler.Upsampler()
    step = tf.function(lambda x: model(x, training=False))
    one, sixteen = tf.random.uniform([1, 64, 64, 3], -1, 1), tf.random.uniform([16, 64, 64, 3])
    latencies = np.array(timed(lambda: step(one).numpy(), repeats)) * 1000
    picture = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    lanczos = np.array(timed(lambda: upsampler.pil_lanczos_unsharp(picture, 256), repeats)) * 1000
    return {"precision": precision, "parameters": model.count_params(),
            "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)),
            "batch16_pictures_per_second": float(
                16 / np.median(timed(lambda: step(sixteen).numpy(), 10))),
            "lanczos_unsharp_pil_p50_ms": float(np.percentile(lanczos, 50))}


def label_part(repeats=20):
    """Milliseconds per 256 px picture of PNG-encoding a batch of 16 in a graph, without and
    with the AI-generated labels (labels.py)."""
    # deferred: a part imports only what it measures (its memory is its own)
    import numpy as np
    import tensorflow as tf

    from adgan import labels

    x = tf.constant(np.random.default_rng(0).integers(0, 256, (16, 256, 256, 3), np.uint8))
    encode = tf.function(lambda x: tf.map_fn(tf.io.encode_png, x, fn_output_signature=tf.string))
    labelled = tf.function(lambda x: labels.label_png_in_graph(encode(x), x, "adgan"))
    plain, both = (float(np.median(timed(lambda: step(x).numpy(), repeats)) * 1000 / 16)
                   for step in (encode, labelled))
    return {"encode_ms_per_picture": plain, "encode_and_label_ms_per_picture": both}


def read_part(repeats=200):
    """Milliseconds (p50) of the shipped model's prompt reader in a graph for one shop title
    and for a batch of 64, and the lexicon's size."""
    import numpy as np  # deferred, as in every part
    import tensorflow as tf
    from adgan.runs.run import Run

    reader = Run().reader  # the shipped model's
    read = tf.function(lambda text: reader(text)["text"])
    results = {"keys": len(reader.lexicon.keys)}
    for label, batch in (("one_title_ms", ["限时特惠！新款冬季加厚黑色羽绒服 男女同款"]),
                         ("batch64_ms", ["Fresh hot coffee ☕ and cake, 50% off today"] * 64)):
        batch = tf.constant(batch)
        read(batch)  # traced
        results[label] = float(np.median(timed(lambda: read(batch).numpy(), repeats)) * 1000)
    return results


PARTS = {"peak": peak_part, "train": train_part, "breakdown": breakdown_part,
         "pipeline": pipeline_part, "serve": serve_part, "upsample": upsample_part,
         "label": label_part, "recipe": recipe_part, "read": read_part}
# the runs of `main`: (results key, part, --precision)
RUNS = (("peak", "peak", None), ("train_float32", "train", "float32"),
        ("train_bfloat16", "train", "bfloat16"), ("breakdown_float32", "breakdown", "float32"),
        ("breakdown_bfloat16", "breakdown", "bfloat16"), ("pipeline", "pipeline", None),
        ("serve", "serve", "float32"), ("serve_bfloat16", "serve", "bfloat16"),
        ("upsample_float32", "upsample", "float32"), ("upsample_bfloat16", "upsample", "bfloat16"),
        ("label", "label", None), ("recipe_float32", "recipe", "float32"),
        ("recipe_bfloat16", "recipe", "bfloat16"), ("read", "read", None))


SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def machine(cpuinfo="/proc/cpuinfo"):
    """A line naming this machine's CPU, core count and the vector/matrix flags that decide
    float32 and bfloat16 speed (AVX2, AVX-512, AVX512-BF16, AMX)."""
    model, flags = platform.processor(), []
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            lines = f.read().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines
                      if line.startswith("model name")), model)
        present = next((line.split(":", 1)[1].split() for line in lines
                        if line.startswith("flags")), [])
        flags = [flag for flag in SPEED_FLAGS if flag in present]
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} logical CPUs, "
            f"flags: {' '.join(flags) if flags else 'none of ' + ' '.join(SPEED_FLAGS)}")


def main(argv=None):
    """Run every part in a subprocess; write the results JSON; returns it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results.json"))
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--only", help="comma-separated result keys to run (default: all)")
    args = parser.parse_args(argv)
    if args.part:  # child process: one part, JSON on the last line of stdout
        kwargs = {"precision": args.precision} if args.precision else {}
        print(json.dumps(PARTS[args.part](**kwargs)))
        return None
    # deferred: the parent only reads TensorFlow's version; each part imports its own
    import tensorflow as tf

    keys = [key for key, _, _ in RUNS]
    only = args.only.split(",") if args.only else keys
    unknown = sorted(set(only) - set(keys))
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(unknown)}; known: {', '.join(keys)}")
    # --only updates those parts of an existing results file and keeps the others, each
    # part stamped with its own machine and date
    results = {}
    if args.only and os.path.exists(args.out):
        with open(args.out, encoding="utf-8") as f:
            results = {key: value for key, value in json.load(f).items() if key in keys}
    results.update({"machine": machine(), "tensorflow": tf.__version__,
                    "date": time.strftime("%Y-%m-%d"), "command": "python bench/run.py"})
    for key, part, precision in RUNS:
        if key not in only:
            continue
        command = [sys.executable, os.path.abspath(__file__), "--part", part]
        command += ["--precision", precision] if precision else []
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results[key] = {**json.loads(output.strip().splitlines()[-1]),
                        "machine": results["machine"], "date": results["date"]}
        print(f"bench: {key}: {results[key]}", flush=True)
    if "pipeline" in only and "train_float32" in only:  # both measured now, on this machine
        fastest = max(results[k]["images_per_second"] for k in results if k.startswith("train_"))
        results["pipeline"]["times_training_consumption"] = (
            min(results["pipeline"]["examples_per_second"],
                results["pipeline"]["examples_per_second_color_augment"]) / fastest)
    write_json(results, args.out)
    print(f"bench: wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
