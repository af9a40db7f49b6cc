"""The shipped model (models/adgan) and release folders, each drawn in a fresh process."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import generate
import runs
from conftest import ROOT

SHIPPED = os.path.exists(runs.path(runs.SHIPPED_RUN, "model"))
needs_shipped = pytest.mark.skipif(not SHIPPED, reason="no shipped model in models/adgan")


@pytest.fixture(scope="module")
def release(trained_run, tmp_path_factory):
    """The trained run's release folder (what `export.py --release` writes)."""
    return runs.write_release(trained_run, str(tmp_path_factory.mktemp("models") / "adgan"))


def run_fresh(args, cwd):
    """Run a command of the repository in a new Python process; returns its stdout."""
    env = {**os.environ, "PYTHONPATH": ROOT}  # `-m ads.creative` from any folder
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                            timeout=600, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def draws(grid_file, rows, columns, size, padding=2):
    """uint8 [rows, columns, size, size, 3]: the images of a generate.py grid."""
    grid = np.asarray(Image.open(grid_file).convert("RGB"))
    assert grid.shape == (rows * (size + padding) + padding,
                          columns * (size + padding) + padding, 3)
    return np.stack([np.stack([grid[padding + r * (size + padding):][:size,
                                    padding + c * (size + padding):][:, :size]
                               for c in range(columns)]) for r in range(rows)])


def test_a_release_draws_in_a_fresh_process(release, tmp_path):
    prompts = ["连衣裙", "jeans", "披萨"]
    run_fresh([os.path.join(ROOT, "generate.py"), "--run", release, "--out", "grid.png",
               "-n", "4", *prompts], cwd=tmp_path)
    images = draws(tmp_path / "grid.png", len(prompts), 4, runs.load_config(release).image_size)
    expected = generate.main(["--run", release, "--out", str(tmp_path / "again.png"), "-n", "4",
                              *prompts])
    assert np.array_equal(np.asarray(Image.open(expected[0])),
                          np.asarray(Image.open(tmp_path / "grid.png")))
    assert images.std() > 0


@needs_shipped
def test_the_shipped_model_draws_every_panel_prompt_in_a_fresh_process(tmp_path):
    out = run_fresh([os.path.join(ROOT, "generate.py"), "--panel", "-n", "8", "--out",
                     "panel.png"], cwd=tmp_path)
    for prompt in generate.PANEL_PROMPTS:
        assert f"generate: {prompt!r}: " in out
    images = draws(tmp_path / "panel.png", len(generate.PANEL_PROMPTS), 8,
                   runs.load_config(runs.SHIPPED_RUN).image_size).astype(float)
    # every row is eight different pictures, and no two rows are the same picture
    assert (images.std(axis=1).mean(axis=(1, 2, 3)) > 1).all()
    means = images.mean(axis=1).reshape(len(images), -1)
    assert min(np.abs(a - b).mean() for i, a in enumerate(means) for b in means[i + 1:]) > 1


@needs_shipped
def test_the_readme_first_creative_from_the_shipped_model(tmp_path):
    run_fresh(["-m", "ads.creative", "--prompt", "红色连衣裙", "--price", "¥199", "--size",
               "1080x1080", "--out-dir", "creatives"], cwd=tmp_path)
    made = [name for name in os.listdir(tmp_path / "creatives") if name.endswith(".png")]
    assert len(made) == 1
    assert Image.open(tmp_path / "creatives" / made[0]).size == (1080, 1080)
