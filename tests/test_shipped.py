"""The shipped model (models/adgan) and release folders, each drawn in a fresh process."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from adgan import quiet
from adgan.runs.layout import SHIPPED_RUN, load_config, run_path
from adgan.runs.release import read_export_info
from adgan.upsampling.upsampler import output_sizes
from conftest import ROOT, assert_labelled
import export
import generate


SHIPPED = os.path.exists(run_path(SHIPPED_RUN, "model"))
needs_shipped = pytest.mark.skipif(not SHIPPED, reason="no shipped model in models/adgan")


def run_fresh(args, cwd):
    """Run a command of the repository in a new Python process; returns its stdout (its
    stderr must hold none of TensorFlow's start-up notices)."""
    env = {**os.environ, "PYTHONPATH": ROOT}  # `-m ads.creative` from any folder
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                            timeout=600, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    if args[0] != "-c":  # a command of ours (not a plain TensorFlow client) starts quietly
        assert not quiet.NOTICE.search(result.stderr), result.stderr[-3000:]
    return result.stdout


def draws(grid_file, rows, columns, size, padding=2):
    """uint8 [rows, columns, size, size, 3]: the images of a generate.py grid."""
    grid = np.asarray(Image.open(grid_file).convert("RGB"))
    assert grid.shape == (rows * (size + padding) + padding,
                          columns * (size + padding) + padding, 3)
    return np.stack([np.stack([grid[padding + r * (size + padding):][:size,
                                    padding + c * (size + padding):][:, :size]
                               for c in range(columns)]) for r in range(rows)])


def largest(run):
    """The side a run's pictures come at by default (4x its drawing's)."""
    return output_sizes(load_config(run).image_size)[-1]


@pytest.mark.slow
def test_a_release_draws_in_a_fresh_process(release, tmp_path):
    prompts = ["连衣裙", "jeans", "披萨"]
    run_fresh([os.path.join(ROOT, "generate.py"), "--run", release, "--out", "grid.png",
               "-n", "4", *prompts], cwd=tmp_path)
    images = draws(tmp_path / "grid.png", len(prompts), 4, largest(release))
    expected = generate.main(["--run", release, "--out", str(tmp_path / "again.png"), "-n", "4",
                              *prompts])
    assert np.array_equal(np.asarray(Image.open(expected[0])),
                          np.asarray(Image.open(tmp_path / "grid.png")))
    assert images.std() > 0


@pytest.mark.slow
@needs_shipped
def test_the_shipped_model_draws_every_panel_prompt_in_a_fresh_process(tmp_path):
    out = run_fresh([os.path.join(ROOT, "generate.py"), "--panel", "-n", "4", "--out",
                     "panel.png"], cwd=tmp_path)
    for prompt in generate.PANEL_PROMPTS:
        assert f"generate: {prompt!r}: " in out
    images = draws(tmp_path / "panel.png", len(generate.PANEL_PROMPTS), 4,
                   largest(SHIPPED_RUN)).astype(float)
    # every row is four different pictures, and no two rows are the same picture
    assert (images.std(axis=1).mean(axis=(1, 2, 3)) > 1).all()
    means = images.mean(axis=1).reshape(len(images), -1)
    assert min(np.abs(a - b).mean() for i, a in enumerate(means) for b in means[i + 1:]) > 1


@pytest.mark.slow
@needs_shipped
def test_the_readme_first_creative_from_the_shipped_model(tmp_path):
    run_fresh(["-m", "ads.creative", "--prompt", "红色连衣裙", "--price", "¥199", "--size",
               "1080x1080", "--out-dir", "creatives"], cwd=tmp_path)
    made = [name for name in os.listdir(tmp_path / "creatives") if name.endswith(".png")]
    assert len(made) == 1
    assert Image.open(tmp_path / "creatives" / made[0]).size == (1080, 1080)
    assert_labelled(tmp_path / "creatives" / made[0], "AI生成")  # both labels, hash matching


# Loads the SavedModel as TF Serving's C++ loader does and sends only text (and a size).
# The shipped model draws at 64 px: 128 and 256 come from its learned up-sampler.
SERVING_CLIENT = """
import sys
import tensorflow as tf

with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], sys.argv[1])
    for size in [None, 64, 128, 256]:
        signature = meta.signature_def["generate_at_size" if size else "serving_default"]
        feed = {signature.inputs["text"].name: ["红色连衣裙", "running shoes"]}
        if size:
            feed[signature.inputs["size"].name] = [size]
        images = session.run(signature.outputs["images"].name, feed)
        print(size, images.shape, images.dtype)
"""


@pytest.mark.slow
@needs_shipped
def test_the_shipped_model_serves_raw_text_at_every_size(tmp_path):
    version = export.main(["--export-dir", str(tmp_path / "adgan")])
    assert read_export_info(version)["upsampler"] == "learned"
    printed = run_fresh(["-c", SERVING_CLIENT, version], cwd=tmp_path).splitlines()
    assert printed == ["None (2, 256, 256, 3) uint8", "64 (2, 64, 64, 3) uint8",
                       "128 (2, 128, 128, 3) uint8", "256 (2, 256, 256, 3) uint8"]


@needs_shipped
def test_the_shipped_catalogue_holds_the_held_out_products_and_chinese_draws_as_english():
    """The release was written with `--catalogue all`: the held-out running shoe and lipstick
    (never in training) are found by their names and terms and drawn around their own
    drawings; a product's Chinese name draws as its English one."""
    import tensorflow as tf

    from adgan.runs.artifacts import load_model
    from data_loader import load_image_rgba

    gan = load_model(SHIPPED_RUN)
    prompts = ["running shoe", "运动鞋", "口红", "外套", "coat"]
    inputs = gan.text_inputs(gan.vectorizer(tf.constant(prompts)))[1]
    drawn, candidates, mask = (np.asarray(x) for x in (inputs[0], *inputs[-2:]))
    for row, image in [(0, "noto/1f45f.png"), (1, "noto/1f45f.png"), (2, "noto/1f484.png")]:
        drawing = load_image_rgba(os.path.join(ROOT, "data", "emoji", image), 16)[..., :3]
        assert any(np.allclose(c, drawing / 127.5 - 1, atol=1e-6)
                   for c, m in zip(candidates[row], mask[row]) if m)
    np.testing.assert_allclose(drawn[3], drawn[4], atol=1e-4)
