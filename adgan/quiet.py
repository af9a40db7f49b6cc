"""Quiet start-up: TensorFlow's first import on a CPU-only machine prints notices that read
as errors to anyone who is not a TensorFlow engineer ("Could not find cuda drivers",
"failed call to cuInit", "All log messages before absl::InitializeLog() is called",
"oneDNN custom operations are on", "This TensorFlow binary is optimized ...").

They come from C++ logging straight to file descriptor 2, before Python could configure
anything, so `TF_CPP_MIN_LOG_LEVEL` alone does not hide them. `install()` (run by
`import adgan`) lets the first `import tensorflow` of the process, wherever it happens,
run with descriptor 2 sent to a temporary file, together with the device probe that logs
the CUDA failure; afterwards every line that is not one of those notices is written to
stderr as it came, so real warnings and errors still show. `ADGAN_VERBOSE=1` keeps
everything.
"""

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

# Start-up notices of TensorFlow's C++ side (module names as in its log lines)
NOTICE = re.compile(
    r"absl::InitializeLog\(\)|cudart_stub\.cc|cuda_platform\.cc|cuda_(dnn|fft|blas)\.cc|"
    r"cpu_feature_guard\.cc|port\.cc:\d+\] oneDNN custom operations|"
    r"^To enable the following instructions|rebuild TensorFlow with the appropriate|"
    r"computation_placer|Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning")


def verbose():
    """True when the user asked for TensorFlow's own start-up logs."""
    return os.environ.get("ADGAN_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def filtered_stderr():
    """Send descriptor 2 to a temporary file for the block; then write its lines that are
    not start-up notices (`NOTICE`) to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(True)
                    if not NOTICE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _Imported(importlib.abc.Loader):
    """Hands the import system a module that is already imported."""

    def __init__(self, module):
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        module.__spec__ = self.spec  # the import system set ours; the real one goes back


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports TensorFlow the first time anything asks for it, under `filtered_stderr`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and the inner import must not come back here
        with filtered_stderr():
            tensorflow = importlib.import_module("tensorflow")
            tensorflow.config.list_physical_devices()  # the CUDA probe logs now, not later
        return importlib.util.spec_from_loader(name, _Imported(tensorflow))


def install():
    """Quiet TensorFlow's first import in this process (unless `verbose()` or it already
    happened)."""
    if verbose() or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's INFO lines (oneDNN's)
    if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
