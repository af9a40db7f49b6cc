import argparse
import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image

from adgan import helpers
import data_loader


def test_atomic_writes_replace_whole_files_and_leave_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    helpers.write_json({"name": "连衣裙"}, str(path))
    assert json.loads(path.read_text(encoding="utf-8")) == {"name": "连衣裙"}
    assert "连衣裙" in path.read_text(encoding="utf-8")  # readable, not \u escapes
    with pytest.raises(RuntimeError):
        with helpers.atomic_path(str(path)) as tmp:
            assert tmp.endswith(".json") and os.path.dirname(tmp) == str(tmp_path)
            open(tmp, "w").write("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text(encoding="utf-8")) == {"name": "连衣裙"}  # untouched
    assert os.listdir(tmp_path) == ["a.json"]


def test_png_from_arrays_and_pil_images(tmp_path):
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    helpers.save_png(image, str(tmp_path / "a.png"))
    helpers.save_png(Image.fromarray(image), str(tmp_path / "b.png"))
    for name in ("a.png", "b.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / name)), image)
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


def test_image_conversions_round_trip_and_clip():
    pixels = np.arange(256, dtype=np.uint8)
    floats = helpers.to_float(pixels)
    assert floats.dtype == np.float32 and floats.min() == -1.0 and floats.max() == 1.0
    np.testing.assert_array_equal(helpers.to_uint8(floats), pixels)
    assert list(helpers.to_uint8([-3.0, 3.0])) == [0, 255]


def test_graph_conversions_match_the_numpy_ones():
    floats = np.linspace(-1.2, 1.2, 301, dtype=np.float32)
    np.testing.assert_array_equal(data_loader.to_uint8_tensor(floats).numpy(),
                                  helpers.to_uint8(floats))
    pixels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(data_loader.to_float_tensor(pixels).numpy(),
                                  helpers.to_float(pixels))


def test_han_characters():
    assert helpers.has_han("红色 T恤") and helpers.has_han("\U00020000")
    assert not helpers.has_han("red dress") and not helpers.has_han("ドレス") \
        and not helpers.has_han("드레스")


def test_grid_tiles_row_by_row():
    images = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (10, 20, 30)])
    grid = helpers.make_grid(images, rows=2, padding=1)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1, 3)
    assert grid[1, 1, 0] == 10 and grid[1, 4, 0] == 20 and grid[4, 1, 0] == 30
    assert grid[4, 4, 0] == 255  # an empty cell stays white


def test_dataclass_flags_are_typed():
    @dataclasses.dataclass(frozen=True)
    class Settings:
        size: int = 4
        names: tuple = ("a",)
        fast: bool = False

    parser = helpers.add_dataclass_flags(argparse.ArgumentParser(), Settings,
                                         default=argparse.SUPPRESS)
    args = vars(parser.parse_args(["--size", "8", "--names", "x,y,", "--fast"]))
    assert Settings(**args) == Settings(8, ("x", "y"), True)
    assert vars(parser.parse_args([])) == {}
