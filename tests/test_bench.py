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
