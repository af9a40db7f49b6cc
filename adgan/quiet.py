"""Quiet TensorFlow: on a CPU-only machine its C++ side prints notices that read as errors
to anyone who is not a TensorFlow engineer: at start-up ("Could not find cuda drivers",
"failed call to cuInit", "All log messages before absl::InitializeLog() is called",
"oneDNN custom operations are on", "This TensorFlow binary is optimized ...") and while
graphs are optimised ("oneDNN supports DT_BOOL only on platforms with AVX-512", "remapper
failed", "Type inference failed": fallbacks it takes by itself, seen on Intel Xeons).

They go straight to file descriptor 2, before or beside anything Python could configure,
so `TF_CPP_MIN_LOG_LEVEL` does not hide them all. `install()` (run by `import adgan`)
makes the process's first `import tensorflow`, wherever it happens, first send
descriptor 2 through a small filter process (adgan/stderr_filter.py) for the rest of the
process: every line that is not one of those notices reaches stderr as it came, so real
warnings, errors and tracebacks still show. Being a process of its own, the filter
outlives a parent that aborts, so the parent's last words are not lost; at a normal exit
the parent waits for it. `ADGAN_VERBOSE=1` keeps everything.
"""

import atexit
import importlib
import importlib.abc
import importlib.util
import os
import re
import subprocess
import sys

# TensorFlow's C++ notices (module names as in its log lines)
NOTICE = re.compile(
    r"absl::InitializeLog\(\)|cudart_stub\.cc|cuda_platform\.cc|cuda_(dnn|fft|blas)\.cc|"
    r"cpu_feature_guard\.cc|port\.cc:\d+\] oneDNN custom operations|"
    r"^To enable the following instructions|rebuild TensorFlow with the appropriate|"
    r"computation_placer|Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning|"
    r"util\.cc:\d+\] oneDNN supports DT_\w+ only on platforms|"
    r"meta_optimizer\.cc:\d+\] \w+ failed: |type_inference\.cc:\d+\] Type inference failed")
FILTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stderr_filter.py")


def verbose():
    """True when the user asked for TensorFlow's own logs."""
    return os.environ.get("ADGAN_VERBOSE", "") not in ("", "0")


def filter_stderr():
    """From now on, send descriptor 2 through the filter process (`NOTICE` lines dropped);
    returns the process, or None where descriptor 2 cannot be redirected."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
        read, write = os.pipe()
    except OSError:  # no descriptor 2 (a daemon), or out of descriptors: leave it be
        return None
    with os.fdopen(read, "rb", buffering=0) as source:
        child = subprocess.Popen([sys.executable, "-S", FILTER, NOTICE.pattern],
                                 stdin=source, stdout=saved, stderr=saved)
    os.dup2(write, 2)
    os.close(write)
    atexit.register(_stop_filter, saved, child)
    return child


def _stop_filter(saved, child):
    """At exit: give descriptor 2 back (the filter then reads its end) and wait for it."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(saved, 2)
    os.close(saved)
    try:
        child.wait(timeout=10)  # a child process of ours that still writes keeps it open
    except subprocess.TimeoutExpired:
        pass


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
    """Starts the stderr filter the first time anything imports TensorFlow."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and the inner import must not come back here
        filter_stderr()
        tensorflow = importlib.import_module("tensorflow")
        return importlib.util.spec_from_loader(name, _Imported(tensorflow))


def install():
    """Quiet TensorFlow in this process (unless `verbose()` or it is already imported)."""
    if verbose() or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's INFO lines (oneDNN's)
    if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
