import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from adgan.drawing import sampling
from adgan.drawing.calibrate import load_gate
from adgan.drawing.gate import Gate
from adgan.runs.artifacts import (load_model, load_reader, load_splitter, load_style_words,
                                  load_upsampler)
from adgan.runs.release import read_export_info
from adgan.upsampling import upsampler
from conftest import SERVING_PROMPTS, assert_labelled
from data_loader import to_uint8_tensor
import export
import generate


PROJECT_MODULES = ("model", "generator", "discriminator", "data_loader", "sampling", "runs",
                   "export", "generate", "train", "helpers", "config", "encoder")

# Runs in a fresh interpreter that imports only tensorflow (and numpy to save results):
# first a TF2 client of every signature, then a TF1 session as TF Serving loads it.
FRESH_CLIENT = """
import base64
import sys
import numpy as np
import tensorflow as tf

path, prompts, seed, out = sys.argv[1], sys.argv[2].split("|"), int(sys.argv[3]), sys.argv[4]
project_modules = sys.argv[5].split(",")
loaded = tf.saved_model.load(path)
serve = loaded.signatures["serving_default"]
request = dict(text=tf.constant(prompts), seed=tf.constant([seed] * len(prompts), tf.int64),
               num_candidates=tf.constant([8], tf.int64))
first, second = serve(**request), serve(**request)
decoded = np.stack([tf.io.decode_png(base64.b64decode(png.numpy())).numpy()
                    for png in first["png"]])
raw = np.stack([tf.io.decode_png(png).numpy() for png in first["png_bytes"]])
native = loaded.signatures["generate_at_size"](**request, size=tf.constant([16], tf.int64))
rescored = loaded.signatures["score"](text=tf.constant(prompts), images=native["images"])
defaults = loaded.generate(tf.constant(prompts))  # seed and num_candidates left out
drawn = loaded.signatures["draw"](text=request["text"], seed=request["seed"])
single = serve(text=request["text"], seed=request["seed"],
               num_candidates=tf.constant([1], tf.int64))
ours = [name for name in project_modules if name in sys.modules]
np.savez(out, images=first["images"].numpy(), again=second["images"].numpy(), png=decoded,
         png_bytes=raw,
         score=first["score"].numpy(), accepted=first["accepted"].numpy(),
         tries=first["tries"].numpy(), rescored=rescored["score"].numpy(),
         default_tries=defaults["tries"].numpy(), project_modules=np.array(ours, dtype=str),
         drawn=drawn["images"].numpy(), single=single["images"].numpy(),
         drawn_png=np.stack([tf.io.decode_png(png).numpy() for png in drawn["png_bytes"]]))
for i, png in enumerate(first["png_bytes"].numpy()):  # the served files, as a client saves them
    with open(f"{out}.{i}.png", "wb") as f:
        f.write(png)

# Then it loads the export the way TF Serving's C++ loader does: restore + init ops in a TF1
# session, then feed only the inputs a request names (the rest take their defaults).
with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    signature = meta.signature_def["serving_default"]
    fetch = {k: v.name for k, v in signature.outputs.items()}
    result = session.run(fetch, {signature.inputs["text"].name: ["红色 dress", "jeans"]})
    print(result["images"].shape, result["images"].dtype, result["tries"].tolist())
"""


def run_python(code, *args):
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_export_layout_and_versions(upsampled_run, exported, capsys):
    base, first = exported
    assert first == os.path.join(base, "1")
    assert {"saved_model.pb", "variables", "assets.extra"} <= set(os.listdir(first))
    assert os.path.exists(os.path.join(base, "1.keras"))
    info = read_export_info(first)
    assert info["image_size"] == 16 and info["gate"]["method"] == "drs"
    assert info["style_words"]["fluent-3d"] == ["3d", "立体"]  # what a client may ask for
    assert info["sizes"] == [16, 32, 64] and info["default_size"] == 64
    assert info["upsampler"] == "learned" and info["composes_bundles"]
    assert info["labels"] == {"producer": "adgan", "explicit": "none"}
    with pytest.raises(SystemExit) as exit_info:
        export.main(["--run", upsampled_run, "--export-dir", base, "--version", "1"])
    assert exit_info.value.code == 1 and "never overwritten" in capsys.readouterr().err
    assert not [name for name in os.listdir(base) if name.startswith(".")]  # no temporary
    # the next free version is 2: test_release_writes_the_slim_folder_and_exports_default_to_it


@pytest.fixture(scope="session")  # session: made once, whatever runs between
def fresh_client(exported, tmp_path_factory):
    """(what it printed, its arrays, the path prefix of its PNGs): one fresh Python process,
    importing only TensorFlow, that calls the export as a TF2 client and then loads it in a
    TF1 session as TF Serving does (one process: its start-up is most of its cost)."""
    _, version = exported
    out = tmp_path_factory.mktemp("client") / "served.npz"
    printed = run_python(FRESH_CLIENT, version, "|".join(SERVING_PROMPTS), 7, out,
                         ",".join(PROJECT_MODULES))
    return printed, np.load(out), out


@pytest.mark.slow
def test_fresh_tensorflow_process_matches_generate(upsampled_run, fresh_client, tmp_path):
    _, served, out = fresh_client
    assert list(served["project_modules"]) == []
    # 64 px by default: the 16 px drawing through the run's up-sampler, in the graph
    assert served["images"].shape == (3, 64, 64, 3) and served["images"].dtype == np.uint8
    np.testing.assert_array_equal(served["images"], served["again"])
    np.testing.assert_array_equal(served["images"], served["png"])
    np.testing.assert_array_equal(served["images"], served["png_bytes"])
    # the `score` signature judges a picture against the whole text; a composed bundle's
    # `score` output is its products' lowest, each judged against its own words
    np.testing.assert_allclose(served["rescored"][:2], served["score"][:2], atol=0.02)
    assert ((served["default_tries"] >= 1) & (served["default_tries"] <= 8)).all()
    # `draw` (no gate) gives the first candidate that serving_default would judge
    np.testing.assert_array_equal(served["drawn"], served["single"])
    np.testing.assert_array_equal(served["drawn"], served["drawn_png"])

    files = generate.main(["--run", upsampled_run, "--out-dir", str(tmp_path / "cli"), "-n", "1",
                           "--seed", "7", *SERVING_PROMPTS])
    drawn = np.stack([np.asarray(Image.open(path)) for path in files])
    # equal to float tolerance before uint8 rounding: at most one grey level apart
    assert np.abs(drawn.astype(int) - served["images"].astype(int)).max() <= 1
    # every served PNG and every generate.py PNG says it is AI-generated, each its own id
    served_files = [f"{out}.{i}.png" for i in range(len(SERVING_PROMPTS))]
    found = [assert_labelled(path) for path in served_files + files]
    assert len({label["ProduceID"] for label in found}) == len(found)
    assert {label["ContentProducer"] for label in found} == {"adgan"}

    gan, gate = load_model(upsampled_run), load_gate(upsampled_run)
    # "咖啡 and cake" is drawn product by product and composed, in the graph as here
    ours = sampling.generate_images(gan, SERVING_PROMPTS, 1, seed=7, gate=gate, max_tries=8,
                                    style_words=load_style_words(upsampled_run),
                                    splitter=load_splitter(upsampled_run),
                                    reader=load_reader(upsampled_run, gan.vocabulary))
    np.testing.assert_allclose(ours["score"][:, 0], served["score"], atol=1e-4)
    np.testing.assert_array_equal(ours["accepted"][:, 0], served["accepted"])
    np.testing.assert_array_equal(ours["tries"][:, 0], served["tries"])
    assert served["tries"][2] >= 2  # two products, each drawn at least once


def test_loads_like_tf_serving_with_only_text(fresh_client):
    printed, _, _ = fresh_client
    assert printed.startswith("(2, 64, 64, 3) uint8 [")


def test_saved_model_cli_lists_the_signatures(exported):
    _, version = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    command = [cli] if os.path.exists(cli) else [
        sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(command + ["show", "--dir", version, "--all"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    shown = result.stdout
    serving = shown[shown.index("signature_def['serving_default']"):]
    scoring = shown[shown.index("signature_def['score']"):shown.index(
        "signature_def['serving_default']")]
    drawing = shown[shown.index("signature_def['draw']"):shown.index(
        "signature_def['draw_at_size']")]

    def tensor(block, kind, name):
        found = re.search(rf"{kind}\['{name}'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))",
                          block)
        return f"{found.group(1)} {found.group(2)}"

    assert tensor(serving, "inputs", "text") == "DT_STRING (-1)"
    assert tensor(serving, "inputs", "seed") == "DT_INT64 (-1)"
    assert tensor(serving, "inputs", "num_candidates") == "DT_INT64 (-1)"
    assert "'size'" not in serving[:serving.index("outputs")]  # its inputs are as they were
    assert tensor(serving, "outputs", "images") == "DT_UINT8 (-1, -1, -1, 3)"
    assert tensor(serving, "outputs", "png") == "DT_STRING (-1)"
    assert tensor(serving, "outputs", "png_bytes") == "DT_STRING (-1)"
    assert tensor(serving, "outputs", "tries") == "DT_INT32 (-1)"
    assert tensor(serving, "outputs", "score") == "DT_FLOAT (-1)"
    assert tensor(serving, "outputs", "accepted") == "DT_BOOL (-1)"
    assert tensor(scoring, "inputs", "text") == "DT_STRING (-1)"
    assert tensor(scoring, "inputs", "images") == "DT_UINT8 (-1, -1, -1, -1)"
    assert tensor(scoring, "outputs", "score") == "DT_FLOAT (-1)"
    assert tensor(drawing, "inputs", "seed") == "DT_INT64 (-1)"
    sized = shown[shown.index("signature_def['draw_at_size']"):shown.index(
        "signature_def['generate_at_size']")]
    assert tensor(sized, "inputs", "size") == "DT_INT64 (-1)"
    assert tensor(sized, "outputs", "images") == "DT_UINT8 (-1, -1, -1, 3)"
    assert tensor(drawing, "outputs", "png_bytes") == "DT_STRING (-1)"
    assert "score" not in drawing and "num_candidates" not in drawing


@pytest.fixture(scope="session")
def loaded(exported):
    return tf.saved_model.load(exported[1])


GOOD_TEXT = ["red dress", "jeans"]


def test_every_drawing_says_what_was_read(loaded):
    """The served graph reads a shop's title: the product, its colour and the ignored words
    come back with the picture from every signature that draws, and the picture has the
    colour (`colors.recolor_drawings`)."""
    text = tf.constant(["限时特惠！新款黑色连衣裙 女", "☕ 50% off"])
    seed = tf.constant([1, 2], tf.int64)
    for out in (loaded.generate(text, seed), loaded.draw(text, seed),
                loaded.draw_at_size(text, seed, tf.constant([16], tf.int64))):
        assert [v.decode() for v in out["drawn_as"].numpy()] == ["dress · black",
                                                                  "hot beverage"]
        assert [v.decode() for v in out["ignored"].numpy()] == ["限时特惠 新款 女", "50 off"]
    small = loaded.draw_at_size(text, seed, tf.constant([16], tf.int64))["images"].numpy()
    product = small[0][small[0].min(-1) < 200]
    assert len(product) and product.max(-1).mean() < 110  # black: the product is dark


@pytest.mark.parametrize("request_args, message", [
    (dict(text=[]), "the batch is empty"),
    (dict(text=["red dress", ""]), "empty or whitespace-only prompt at index] [1]"),
    (dict(text=["  \t "]), "empty or whitespace-only prompt"),
    (dict(text=["zzzz qqqq"]), "names no product"),
    (dict(text=GOOD_TEXT, seed=[1]), "one seed per prompt"),
    (dict(text=GOOD_TEXT, num_candidates=[0]), "num_candidates: must be between 1 and 64"),
    (dict(text=GOOD_TEXT, num_candidates=[65]), "num_candidates: must be between 1 and 64"),
    (dict(text=GOOD_TEXT, num_candidates=[1, 2, 3]), "one value, or one per prompt"),
    (dict(text=GOOD_TEXT, size=[100]), "size: give one value, one of 16, 32, 64"),
    (dict(text=GOOD_TEXT, size=[16, 32]), "size: give one value, one of 16, 32, 64"),
])
def test_bad_generate_requests_are_invalid_argument(loaded, request_args, message):
    args = {"text": tf.constant(request_args["text"], tf.string)}
    for name in ("seed", "num_candidates", "size"):
        if name in request_args:
            args[name] = tf.constant(request_args[name], tf.int64)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("[", r"\[")
                       .replace("]", r"\]")):
        loaded.generate_at_size(**args)


def test_bad_draw_requests_are_invalid_argument(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty or whitespace-only"):
        loaded.draw(tf.constant(["red dress", " "]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one seed per prompt"):
        loaded.draw(tf.constant(GOOD_TEXT), tf.constant([1, 2, 3], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="names no product"):
        loaded.draw(tf.constant(["zzzz"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="size: give one value"):
        loaded.draw_at_size(tf.constant(GOOD_TEXT), size=tf.constant([0], tf.int64))


def test_raw_text_gets_every_documented_size(loaded, upsampled_run):
    # prompts that ask no colour: a colour is given at the size served, after enlarging
    text, seed = tf.constant(["dress", "jeans"]), tf.constant([5, 6], tf.int64)
    pictures = {}
    for size in (16, 32, 64):
        for name, call in (("generate", lambda s: loaded.generate_at_size(text, seed, size=s)),
                           ("draw", lambda s: loaded.draw_at_size(text, seed, size=s))):
            images = call(tf.constant([size], tf.int64))["images"].numpy()
            assert images.shape == (2, size, size, 3) and images.dtype == np.uint8, name
            pictures[name, size] = images
    # no size: the largest; each size is the one drawing (16 px -> its up-sampled 64 px)
    np.testing.assert_array_equal(loaded.draw(text, seed)["images"].numpy(), pictures["draw", 64])
    np.testing.assert_array_equal(pictures["draw", 64], upsampler.enlarge(
        pictures["draw", 16], 64, load_upsampler(upsampled_run)).numpy())


@pytest.mark.parametrize("images", [np.zeros((2, 24, 24, 3)), np.zeros((3, 16, 16, 3)),
                                    np.zeros((2, 16, 16)), np.zeros((2, 16, 16, 4)),
                                    np.zeros((2, 16, 32, 3))])
def test_bad_score_images_are_invalid_argument(loaded, images):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"images: expected uint8\[batch, s, s, 3\] with s one of 16, 32, 64"):
        loaded.signatures["score"](text=tf.constant(GOOD_TEXT),
                                   images=tf.constant(images, tf.uint8))


def test_score_rejects_float_images_and_empty_text(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8 tensor"):
        loaded.signatures["score"](text=tf.constant(GOOD_TEXT),
                                   images=tf.zeros([2, 16, 16, 3], tf.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty or whitespace-only"):
        loaded.signatures["score"](text=tf.constant(["", "jeans"]),
                                   images=tf.zeros([2, 16, 16, 3], tf.uint8))


def test_overlong_text_is_truncated(loaded):
    # a prompt is read up to its first 500 characters (understanding.py): 2,000 words draw
    # the same as their first 500 characters (the texts name a style, or the style each
    # seed picks would depend on the whole text)
    text = "3d " + "dress jeans " * 1000
    long = loaded.generate(tf.constant([text]), tf.constant([3], tf.int64))
    short = loaded.generate(tf.constant([text[:500]]), tf.constant([3], tf.int64))
    np.testing.assert_array_equal(long["images"].numpy(), short["images"].numpy())


def test_missing_calibration_and_bad_flags(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    os.makedirs(run / "final")
    with pytest.raises(SystemExit) as exit_info:
        export.main(["--run", str(run), "--export-dir", str(tmp_path / "e")])
    assert exit_info.value.code == 1 and "adgan-calibrate --run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export.main(["--run", trained_run, "--export-dir", str(tmp_path / "e"),
                     "--num-candidates", "100"])
    assert "--num-candidates must be in [1, --max-candidates=64]" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "e")


def test_a_failed_export_leaves_no_version(trained_run, tmp_path, monkeypatch, capsys):
    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(export.shutil, "copyfile", crash)  # fails after the SavedModel is written
    with pytest.raises(SystemExit):
        export.main(["--run", trained_run, "--export-dir", str(tmp_path / "e")])
    assert "disk full" in capsys.readouterr().err
    assert os.listdir(tmp_path / "e") == []


def test_release_writes_the_slim_folder_and_exports_default_to_it(trained_run, exported,
                                                                   tmp_path, monkeypatch,
                                                                   capsys):
    release = str(tmp_path / "models" / "adgan")
    assert export.main(["--run", trained_run, "--release", release]) == release
    assert f"export: wrote {release} (" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        export.main(["--run", trained_run, "--release", release])
    assert exit_info.value.code == 1 and "exists: remove it first" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one of the two targets, not both
        export.main(["--release", release, "--export-dir", str(tmp_path / "e")])
    monkeypatch.setattr("adgan.runs.layout.SHIPPED_RUN", release)
    # no --run: the shipped model, as the next free version beside `exported`'s first (one
    # export checks both), drawn at 16 px when a request names no size
    base, _ = exported
    version = export.main(["--export-dir", base, "--size", "16"])
    assert version == os.path.join(base, "2")
    info = read_export_info(version)
    assert info["run"] == release and info["default_size"] == 16
    assert sorted(os.listdir(base)) == ["1", "1.keras", "2", "2.keras"]  # no temporary left


def test_every_signature_refuses_invalid_utf8_and_cleans_control_characters(loaded):
    bad = tf.constant([b"red dress", b"\xff\xfe dress"])
    images = tf.zeros((2, 16, 16, 3), tf.uint8)
    for call in (lambda: loaded.generate_at_size(bad, size=tf.constant([16], tf.int64)),
                 lambda: loaded.draw(bad),
                 lambda: loaded.signatures["serving_default"](
                     text=bad, seed=tf.constant([1, 2], tf.int64),
                     num_candidates=tf.constant([1], tf.int64)),
                 lambda: loaded.signatures["score"](text=bad, images=images)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="text: not valid UTF-8"):
            call()
    # control and format characters are cleaned, not refused (the tokenizer's tests check
    # the tokens match; the style each seed picks hashes the raw text, so pixels may differ)
    drawn = loaded.draw(tf.constant(["red\u202e dress\u0000"]), tf.constant([3], tf.int64))
    assert drawn["images"].shape[0] == 1


def test_a_word_attention_model_serves_from_a_saved_model(tmp_path):
    from model import TextToImageGAN

    gan = TextToImageGAN(["coffee", "cake", "咖", "啡", "和", "蛋", "糕"], image_size=32,
                         sequence_length=6, noise_dim=8, embedding_dim=8, text_hidden_units=4,
                         generator_channels=4, discriminator_channels=4, affine_hidden_units=8,
                         skip_excitation=True, word_attention=True)
    gan.generator.get_layer("attend_32").gate.assign(1.0)  # so the words matter
    gan.ema_generator.set_weights(gan.generator.get_weights())
    module = export.build_serving_module(gan, Gate.ungated(), 2, 4, default_size=32)
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={
        "serving_default": module.generate, "draw": module.draw})
    served = tf.saved_model.load(str(tmp_path / "1"))
    text = tf.constant(["咖啡和蛋糕", "coffee and cake"])
    seed = tf.constant([3, 3], tf.int64)
    out = served.signatures["draw"](text=text, seed=seed)
    expected = to_uint8_tensor(sampling.ungated_generate(
        gan, gan.vectorizer(text), seed)).numpy()
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(png))) for png in
                       out["png_bytes"].numpy()])
    np.testing.assert_array_equal(pixels, expected)
