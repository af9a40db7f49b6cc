import importlib.util
import os

import tensorflow as tf

from conftest import ROOT

spec = importlib.util.spec_from_file_location("bench_run", os.path.join(ROOT, "bench", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_flop_count_of_a_matmul_is_two_n_cubed():
    a, b = tf.zeros((64, 32)), tf.zeros((32, 16))
    concrete = tf.function(lambda x, y: tf.matmul(x, y)).get_concrete_function(a, b)
    assert bench.graph_flops(concrete) == 2 * 64 * 32 * 16


def test_machine_line_and_timing_helper():
    assert "logical CPUs" in bench.machine()
    calls = []
    times = bench.timed(lambda: calls.append(1), 3)
    assert len(times) == 3 and len(calls) == 4  # one warm-up call


def test_convolution_peak_counts_its_flops():
    result = bench.conv_peak(repeats=1, batch=1, side=8, channels=4)
    assert result["gflops"] > 0


def test_machine_line_names_the_speed_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name : Intel Xeon\nflags : fpu avx2 avx512f amx_bf16 amx_tile\n")
    assert bench.machine(str(cpuinfo)).endswith("flags: avx2 avx512f amx_bf16 amx_tile")
    assert bench.machine(str(cpuinfo)).startswith("Intel Xeon, ")


def test_breakdown_times_every_piece_of_the_train_step():
    result = bench.breakdown_part(steps=1, preset="smoke")
    pieces = result["pieces"]
    assert {"train_step", "d_step", "g_step", "text_encoder_forward", "generator_forward",
            "discriminator_forward", "real_pair_with_gradient_penalty",
            "ema_update"} == set(pieces)
    assert pieces["train_step"]["fraction_of_train_step"] == 1.0
    assert all(piece["seconds"] > 0 for piece in pieces.values())
    # back-propagation costs FLOPs beyond the forward passes it contains
    assert pieces["d_step"]["gflops"] > pieces["discriminator_forward"]["gflops"] > 0


def test_the_recipes_are_timed_side_by_side():
    smoke = ["--preset", "smoke", "--image-size", "32"]
    result = bench.recipe_part(steps=1, recipes={
        "smoke": smoke, "instance": smoke + ["--exemplar-size", "8",
                                             "--generator-min-channels", "8"]})
    assert result["instance"]["gflops_per_step"] > result["smoke"]["gflops_per_step"] > 0
    assert result["instance"]["images_per_second"] > 0
    assert result["instance_over_smoke_time"] > 0


def test_serving_is_measured_in_bfloat16_too():
    result = bench.serve_part(repeats=1, precision="bfloat16", preset="smoke")
    assert result["precision"] == "bfloat16" and result["image_size"] == 16
    for label in ("gate_off", "one_judged_candidate", "gate_on_8_candidates"):
        assert result[label]["p50_ms"] > 0 and result[label]["batch64_images_per_second"] > 0
