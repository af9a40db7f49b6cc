"""Quiet start-up (adgan/quiet.py): TensorFlow's CPU-only notices are dropped, real lines
on the same descriptor are kept, and every command imports adgan before TensorFlow."""

import ast
import os

import pytest

from adgan import quiet
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
]


def test_notices_are_dropped_and_other_lines_kept(capfd):
    with quiet.filtered_stderr():
        for line in [NOTICES[0], "a real warning: disk almost full", *NOTICES[1:],
                     "E0000 some_kernel.cc:12] a real error"]:
            os.write(2, (line + "\n").encode())
    assert capfd.readouterr().err == ("a real warning: disk almost full\n"
                                      "E0000 some_kernel.cc:12] a real error\n")


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
