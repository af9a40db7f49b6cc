"""Small helpers every room uses: atomic file writes, image conversions, the Han test.

Kept free of TensorFlow so that light tools (the CTR report, the data build) stay
light; the graph forms of the image conversions are `data_loader.to_float_tensor`
and `data_loader.to_uint8_tensor`.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import sys

import numpy as np
from PIL import Image

# The checkout the adgan package sits in: where models/ and data/ are.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Han (Chinese) characters: the CJK unified ideographs, extension A, the compatibility
# ideographs and the supplementary planes' extensions. One class for Python's `re` and
# TensorFlow's RE2 alike (both read these ranges).
HAN_CHARACTERS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
HAN = re.compile(f"[{HAN_CHARACTERS}]")


def decoded(values):
    """A string tensor's values as a numpy array of Python str (UTF-8)."""
    return np.char.decode(np.asarray(values).astype(bytes), "utf-8")


def has_han(text):
    """True if `text` holds a Han (Chinese) character."""
    return HAN.search(text) is not None


# ----------------------------------------------------------------------------- atomic writes

@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; when the block ends cleanly, rename it to `path`.

    The temporary name keeps `path`'s extension (savers that pick a format by it,
    such as Keras, NumPy and Pillow, still work), so a crash never leaves a
    half-written `path`; a failed block removes the temporary file (or folder).
    """
    folder, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    tmp = os.path.join(folder, f".{stem}.{os.getpid()}.tmp{extension}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        elif os.path.exists(tmp):
            os.remove(tmp)


# what `atomic_path` (.NAME.PID.tmp.EXT) and export.py (.tmp-VERSION-PID) leave behind
# when a process is killed before it can clean up
TEMPORARY_NAME = re.compile(r"^\.(?:tmp-\d+-(\d+)|.+\.(\d+)\.tmp(?:\.\w+)?)$")


def remove_stale_temporaries(folder):
    """Delete the temporary files and folders in `folder` whose writing process is gone
    (killed mid-write); returns their names. Those of live processes are left alone."""
    removed = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        found = TEMPORARY_NAME.match(name)
        if not found or process_alive(int(found[1] or found[2])):
            continue
        target = os.path.join(folder, name)
        shutil.rmtree(target, ignore_errors=True) if os.path.isdir(target) else os.remove(target)
        removed.append(name)
    return removed


def process_alive(pid):
    """True if a process with this id runs on this machine (ours included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def write_text(text, path):
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(data, path):
    """Write JSON (UTF-8, indented, Chinese kept readable) atomically."""
    write_text(json.dumps(data, ensure_ascii=False, indent=2), path)


def save_png(image, path):
    """Save a uint8 [H, W, 3] array or a PIL image as a PNG file atomically."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


# ----------------------------------------------------------------------------- images

def to_uint8(images):
    """float images in [-1, 1] [..., H, W, 3] -> uint8 in [0, 255] (round half to even)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_float(images):
    """uint8 images in [0, 255] -> float32 in [-1, 1], the models' range."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def make_grid(images, rows, padding=2):
    """Tile uint8 images [rows * cols, H, W, 3] into one uint8 picture, row by row."""
    count, height, width, _ = images.shape
    cols = -(-count // rows)
    grid = np.full((rows * (height + padding) + padding, cols * (width + padding) + padding, 3),
                   255, dtype=np.uint8)
    for i, image in enumerate(images):
        top = padding + (i // cols) * (height + padding)
        left = padding + (i % cols) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


# ----------------------------------------------------------------------------- flags

def split_list(text):
    """"a,b," -> ("a", "b"): a comma-separated flag value as a tuple."""
    return tuple(value for value in text.split(",") if value)


def add_dataclass_flags(parser, config_class, **options):
    """One flag per field of a config dataclass, `--field-name`, typed by the field's default
    (booleans take `--x` / `--no-x`, tuples a comma-separated list)."""
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        kind = type(field.default)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif kind is tuple:
            parser.add_argument(flag, type=split_list, help="comma-separated list", **options)
        else:
            parser.add_argument(flag, type=kind, help=f"default {field.default!r}", **options)
    return parser


def progress_verbosity(verbose):
    """Keras' `verbose` for a log: a progress bar (1) only on a terminal, one line an epoch (2)
    when stdout is a file or pipe (nohup, CI), where each bar redraw would be a new line."""
    return 2 if verbose == 1 and not sys.stdout.isatty() else verbose


# ----------------------------------------------------------------------------- commands

def run_command(main, prog):
    """Run a command's `main()` so that a user never sees a traceback: a file the system
    refuses (missing, a folder, no permission, disk full) is one line naming the file and
    the problem; anything unexpected is one line naming the error, and `ADGAN_DEBUG=1`
    shows its traceback. The commands' own checks exit with their own one-line messages
    before this is reached. Returns None: a console script exits with its return value."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(f"{prog}: interrupted")
    except OSError as error:
        if os.environ.get("ADGAN_DEBUG"):
            raise
        where = f"{error.filename}: " if error.filename else ""
        sys.exit(f"{prog}: {where}{error.strerror or error}")
    except Exception as error:  # the last guard; the hostile-input tests never reach it
        if os.environ.get("ADGAN_DEBUG"):
            raise
        detail = (str(error).strip().splitlines() or [""])[0][:300]
        sys.exit(f"{prog}: internal error ({type(error).__name__}: {detail}); rerun with "
                 "ADGAN_DEBUG=1 for the traceback and report it")
