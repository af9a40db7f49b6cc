"""Quiet TensorFlow (adgan/quiet.py): its CPU-only notices are dropped, real lines on the
same descriptor are kept (tracebacks and an abort's last line too), and every command
imports adgan before TensorFlow."""

import ast
import os
import subprocess
import sys

import pytest

from conftest import ROOT

# The commands a user runs (python FILE or its console script) outside the adgan and ads
# packages, whose __init__ installs the quiet import first.
SCRIPTS = ("generate.py", "train.py", "export.py", "evaluate.py")
NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796382745.164475    1463 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796382751.225518    1463 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1796382753.353439    1473 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.",
    # while graphs are optimised (an Intel Xeon with AMX, TensorFlow 2.21)
    "E0000 00:00:1796393344.946455    4926 util.cc:131] oneDNN supports DT_BOOL only on "
    "platforms with AVX-512. Falling back to the default Eigen-based implementation if present.",
    "E0000 00:00:1796393363.334821    4926 meta_optimizer.cc:967] remapper failed: "
    "INVALID_ARGUMENT: Mutation::Apply error: fanout 'StatefulPartitionedCall/cond' exist",
    "W0000 00:00:1796393356.882491    4927 type_inference.cc:340] Type inference failed. This "
    "indicates an invalid graph that escaped type checking.",
]


def filtered(code):
    """stderr of a fresh Python (no TensorFlow: a subprocess costs ~0.1 s) that runs `code`
    with its descriptor 2 through the filter, and its exit status."""
    result = subprocess.run([sys.executable, "-c", "from adgan import quiet\n"
                             "quiet.filter_stderr()\nimport os, sys\n" + code],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    return result.stderr, result.returncode


def test_notices_are_dropped_and_other_lines_kept():
    lines = [NOTICES[0], "a real warning: disk almost full", *NOTICES[1:],
             "E0000 some_kernel.cc:12] a real error"]
    err, status = filtered(f"for line in {lines!r}: os.write(2, (line + '\\n').encode())\n"
                           "print('from Python', file=sys.stderr)\n"
                           "sys.stderr.write('no newline at the end')")
    assert status == 0
    assert err == ("a real warning: disk almost full\nE0000 some_kernel.cc:12] a real error\n"
                   "from Python\nno newline at the end")


def test_a_traceback_and_the_last_words_of_an_abort_still_show():
    err, status = filtered("raise RuntimeError('a real failure')")
    assert status == 1 and err.rstrip().endswith("RuntimeError: a real failure")
    # a C++ abort (LOG(FATAL)) leaves no time to flush: the filter process outlives it
    err, status = filtered(f"os.write(2, b'{NOTICES[2]}\\nF0000 x.cc:1] Check failed\\n')\n"
                           "os.abort()")
    assert status != 0 and err == "F0000 x.cc:1] Check failed\n"


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_command_imports_adgan_before_tensorflow(script):
    """Static, since TensorFlow is imported once a process: the first import of a module
    that reaches TensorFlow must come after `adgan` (whose import quiets it)."""
    tree = ast.parse(open(os.path.join(ROOT, script), encoding="utf-8").read())
    names = [alias.name if isinstance(node, ast.Import) else node.module
             for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
             for alias in (node.names if isinstance(node, ast.Import) else node.names[:1])]
    first_project = next(i for i, name in enumerate(names)
                         if name.split(".")[0] in ("adgan", "ads", "tensorflow", "keras",
                                                   "data_loader", "model", "generator",
                                                   "discriminator", "train"))
    assert names[first_project].split(".")[0] in ("adgan", "ads"), names
