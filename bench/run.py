"""Benchmarks, run by hand: `python bench/run.py [--out bench/results.json]`.

Each part runs in its own process (so its peak memory is its own) and prints JSON;
each imports only what it measures, inside its function, for the same reason:
- peak: float32 matmul throughput of this CPU (the roof the train step is held to);
- train: the `full` preset's 64x64 train step (G + D + text encoder, MA-GP every
  step, batch 32) on synthetic data: images/s, and its FLOPs (counted by TF's
  profiler from the step's graph) per second as a fraction of the matmul peak;
- pipeline: the tf.data loader alone on the shipped manifest at 64x64, batch 32;
- serve: the exported SavedModel (64x64, untrained weights: speed does not depend
  on them) for one prompt and for a batch of 64: gate off (the `draw` signature),
  one judged candidate (`serving_default`, num_candidates 1) and the gate on
  (8 candidates, all drawn: the gate's worst case).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from helpers import write_json  # noqa: E402  (light: no TensorFlow)


def peak_memory_mb():
    """This process's peak resident memory in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeats):
    """Seconds of each of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def matmul_peak(size=2048, repeats=20):
    """Best float32 matmul GFLOP/s over `repeats` runs of an n x n product."""
    # deferred: a part imports only what it measures (its memory is its own)
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    best = min(timed(lambda: product().numpy(), repeats))
    return {"matmul_size": size, "gflops": 2 * size ** 3 / best / 1e9}


def graph_flops(concrete_function):
    """Float operations of one call of a concrete function, counted by TF's profiler."""
    # deferred: a part imports only what it measures (its memory is its own)
    import tensorflow as tf

    graph = concrete_function.graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def train_part(steps=10):
    """images/s and FLOP/s of the full preset's train step on synthetic data."""
    # deferred: a part imports only what it measures (its memory is its own)
    import numpy as np
    import tensorflow as tf

    import train
    from config import resolve_config

    config = resolve_config(["--preset", "full"])
    vocabulary = [f"w{i}" for i in range(2000)]
    gan = train.build_gan(config, vocabulary)
    batch = {"token_ids": tf.constant(np.random.default_rng(0).integers(
                 2, 2000, (config.batch_size, config.sequence_length)), tf.int64),
             "images": tf.random.uniform((config.batch_size, 64, 64, 3), -1.0, 1.0)}
    step = tf.function(gan.train_step)
    concrete = step.get_concrete_function(batch)
    flops = graph_flops(concrete)
    times = timed(lambda: [v.numpy() for v in step(batch).values()], steps)
    seconds = float(np.median(times))
    peak = matmul_peak()
    return {"batch_size": config.batch_size, "image_size": config.image_size,
            "seconds_per_step": seconds, "images_per_second": config.batch_size / seconds,
            "gflops_per_step": flops / 1e9, "achieved_gflops": flops / seconds / 1e9,
            "matmul_peak_gflops": peak["gflops"],
            "fraction_of_matmul_peak": flops / seconds / 1e9 / peak["gflops"],
            "peak_memory_mb": peak_memory_mb()}


def pipeline_part(batches=200):
    """Examples/s of the loader alone (decoded and cached, as after the first epoch), plain
    and with one recoloured copy per clothing/vehicle row (`--color-augment 1`)."""
    # deferred: a part imports only what it measures (its memory is its own)
    import colors
    import data_loader

    examples, _ = data_loader.load_examples(data_loader.DEFAULT_MANIFEST, 64, split="train",
                                            recolorable={"subgroup": colors.DEFAULT_SUBGROUPS})
    vectorizer = data_loader.make_text_vectorizer(
        data_loader.examples_vocabulary(examples, 8000, color_augment=1), 16)
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


def serve_part(repeats=200):
    """Latency percentiles and batch throughput of the exported SavedModel."""
    # deferred: a part imports only what it measures (its memory is its own)
    import numpy as np
    import tensorflow as tf

    import export
    import train
    from config import resolve_config
    from sampling import Gate

    config = resolve_config(["--preset", "full"])
    gan = train.build_gan(config, ["red", "dress", "手", "机"])
    neutral = Gate(slope=1.0, intercept=0.0, max_log_odds=0.0, shift=0.0, min_score=1.0)
    module = export.build_serving_module(gan, neutral, default_candidates=1, max_candidates=64)
    folder = tempfile.mkdtemp()
    tf.saved_model.save(module, folder, signatures={"serving_default": module.generate,
                                                    "draw": module.draw})
    del gan, module
    loaded = tf.saved_model.load(folder)
    results = {"image_size": 64}
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


PARTS = {"peak": matmul_peak, "train": train_part, "pipeline": pipeline_part,
         "serve": serve_part}


def machine():
    """A line naming this machine's CPU and core count."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def main(argv=None):
    """Run every part in a subprocess; write the results JSON; returns it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results.json"))
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:  # child process: one part, JSON on the last line of stdout
        print(json.dumps(PARTS[args.part]()))
        return None
    # deferred: the parent only reads TensorFlow's version; each part imports its own
    import tensorflow as tf

    results = {"machine": machine(), "tensorflow": tf.__version__,
               "date": time.strftime("%Y-%m-%d"), "command": "python bench/run.py"}
    for part in ("train", "pipeline", "serve"):
        output = subprocess.run([sys.executable, os.path.abspath(__file__), "--part", part],
                                capture_output=True, text=True, check=True).stdout
        results[part] = json.loads(output.strip().splitlines()[-1])
        print(f"bench: {part}: {results[part]}", flush=True)
    results["pipeline"]["times_training_consumption"] = (
        min(results["pipeline"]["examples_per_second"],
            results["pipeline"]["examples_per_second_color_augment"])
        / results["train"]["images_per_second"])
    write_json(results, args.out)
    print(f"bench: wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
