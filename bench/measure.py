"""The benchmarks' measuring tools: timing, peak memory, FLOPs, and this CPU's matmul and
convolution roofs (the `peak` part). Each imports TensorFlow inside, as bench/run.py's parts
do, so a part's memory is its own."""

import resource
import time


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


def matmul_peak(size=2048, repeats=20, dtype="float32"):
    """Best matmul GFLOP/s over `repeats` runs of an n x n product in `dtype`."""
    # deferred: a part imports only what it measures (its memory is its own)
    import tensorflow as tf

    a = tf.cast(tf.random.normal((size, size)), dtype)
    b = tf.cast(tf.random.normal((size, size)), dtype)
    product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), "float32")))
    best = min(timed(lambda: product().numpy(), repeats))
    return {"matmul_size": size, "gflops": 2 * size ** 3 / best / 1e9}


def conv_peak(repeats=10, dtype="float32", batch=32, side=64, channels=64):
    """Best GFLOP/s of a 3x3 convolution, `channels` in and out, [batch, side, side]."""
    # deferred: a part imports only what it measures (its memory is its own)
    import tensorflow as tf

    x = tf.cast(tf.random.normal((batch, side, side, channels)), dtype)
    kernel = tf.cast(tf.random.normal((3, 3, channels, channels)), dtype)
    conv = tf.function(lambda: tf.reduce_sum(tf.cast(
        tf.nn.conv2d(x, kernel, 1, "SAME"), "float32")))
    best = min(timed(lambda: conv().numpy(), repeats))
    return {"gflops": 2 * 9 * channels * channels * batch * side * side / best / 1e9}


def peak_part():
    """Matmul and convolution peaks in float32 and bfloat16."""
    return {dtype: {"matmul_gflops": matmul_peak(dtype=dtype)["gflops"],
                    "conv3x3_gflops": conv_peak(dtype=dtype)["gflops"]}
            for dtype in ("float32", "bfloat16")}


def graph_flops(concrete_function):
    """Float operations of one call of a concrete function, counted by TF's profiler."""
    # deferred: a part imports only what it measures (its memory is its own)
    import tensorflow as tf

    graph = concrete_function.graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
