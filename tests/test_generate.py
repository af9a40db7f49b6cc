import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from adgan import quiet
from adgan.data.styles import vary_style
from adgan.drawing import sampling
from adgan.drawing.calibrate import load_gate
from adgan.runs.artifacts import load_model, load_style_words
from adgan.upsampling import upsampler
import generate

# they draw through the commands' main(): one load of each model file (conftest)
pytestmark = pytest.mark.usefixtures("shared_models")


def test_grid_has_one_row_per_prompt(trained_run, tmp_path):
    out = str(tmp_path / "grid.png")
    generate.main(["--run", trained_run, "--out", out, "-n", "3", "--size", "16", "连衣裙",
                   "jeans"])
    grid = np.asarray(Image.open(out))
    # 16-pixel images with 2-pixel padding: 2 rows x 3 columns
    assert grid.shape == (2 * 18 + 2, 3 * 18 + 2, 3)


def test_size_enlarges_the_same_drawing(trained_run, tmp_path, capsys):
    def draw(*size):
        files = generate.main(["--run", trained_run, "--out-dir", str(tmp_path / "s"), "-n", "1",
                               "--seed", "3", *size, "jeans"])
        return np.asarray(Image.open(files[0]))

    native, default = draw("--size", "16"), draw()  # no --size: the largest, 4 x 16
    assert native.shape == (16, 16, 3) and default.shape == (64, 64, 3)
    assert "(64 px, Lanczos + unsharp mask)" in capsys.readouterr().out  # no up-sampler here
    # the same pixels enlarged (to float rounding: the command's traced graph and this eager
    # call may round a value on either side of a half, one level apart)
    np.testing.assert_allclose(default.astype(int),
                               upsampler.enlarge(native[None], 64).numpy()[0].astype(int), atol=1)
    assert draw("--size", "32").shape == (32, 32, 3)
    with pytest.raises(SystemExit) as exit_info:
        draw("--size", "48")
    assert exit_info.value.code == 2
    assert "--size must be one of 16, 32, 64 for this model, got 48" in capsys.readouterr().err


def test_panel_is_24_products_half_chinese_all_words_of_the_shipped_captions():
    from adgan.text import tokenizer
    from conftest import SHIPPED
    import data_loader

    parser = generate.make_parser()
    args = parser.parse_args(["--run", "R", "--out", "p.png", "--panel", "red dress"])
    generate.check_flags(parser, args)
    assert args.prompts == ["red dress", *generate.PANEL_PROMPTS]
    assert len(generate.PANEL_PROMPTS) == 24
    assert sum(not p.isascii() for p in generate.PANEL_PROMPTS) == 12
    rows = data_loader.read_manifest(os.path.join(SHIPPED, "captions.csv"))
    vocabulary = set(tokenizer.examples_vocabulary(rows, 100000))
    unknown = {p: words for p in generate.PANEL_PROMPTS
               if (words := {t.decode() for t in tokenizer.split_tokens([p])} - vocabulary)}
    assert unknown == {}


def test_out_dir_and_seed_repeatability(trained_run, tmp_path):
    first = generate.main(["--run", trained_run, "--out-dir", str(tmp_path / "a"), "-n", "2",
                           "--seed", "7", "红色 dress"])
    again = generate.main(["--run", trained_run, "--out-dir", str(tmp_path / "b"), "-n", "2",
                           "--seed", "7", "红色 dress"])
    other = generate.main(["--run", trained_run, "--out-dir", str(tmp_path / "c"), "-n", "2",
                           "--seed", "8", "红色 dress"])
    assert [os.path.basename(p) for p in first] == ["00_红色-dress_0.png", "00_红色-dress_1.png"]
    pixels = [np.asarray(Image.open(p)) for p in first + again + other]
    assert pixels[0].shape == (64, 64, 3)
    assert np.array_equal(pixels[0], pixels[2]) and np.array_equal(pixels[1], pixels[3])
    assert not np.array_equal(pixels[0], pixels[4])


def test_style_puts_the_style_word_in_front_of_each_prompt(trained_run, tmp_path, capsys):
    for style in ("fluent-3d", "3d", "立体"):
        generate.main(["--run", trained_run, "--out", str(tmp_path / "s.png"), "-n", "1",
                       "--style", style, "连衣裙", "jeans"])
        printed = capsys.readouterr().out
        assert "'立体 连衣裙'" in printed and "'3d jeans'" in printed
    with pytest.raises(SystemExit) as stop:
        generate.main(["--run", trained_run, "--out", str(tmp_path / "s.png"), "--style",
                       "pixel", "jeans"])
    assert stop.value.code == 1
    assert "unknown style 'pixel'; this model knows noto (noto / 谷歌)" in capsys.readouterr().err


def test_draws_vary_the_style_unless_told_not_to(trained_run, tmp_path):
    def draw(folder, seed, *args):
        files = generate.main(["--run", trained_run, "--out-dir", str(tmp_path / folder),
                               "--seed", str(seed), *args])
        return [np.asarray(Image.open(path)) for path in files]

    varied = draw("varied", 7, "-n", "2", "--size", "16", "jeans")
    styled = [t.decode() for t in vary_style(["jeans"] * 2, [7, 8],
                                             load_style_words(trained_run)).numpy()]
    assert styled[0] != styled[1]  # consecutive seeds name different styles
    # image k is its seed's style word typed in front of the prompt, drawn as typed
    for k, text in enumerate(styled):
        typed = draw(f"typed{k}", 7 + k, "-n", "1", "--size", "16", "--style", "none", text)
        assert np.array_equal(varied[k], typed[0])
    plain = draw("plain", 7, "-n", "2", "--size", "16", "--style", "none", "jeans")
    as_typed = sampling.generate_images(load_model(trained_run), ["jeans"], 2, seed=7,
                                        gate=load_gate(trained_run), max_tries=8)
    assert np.array_equal(np.stack(plain), as_typed["images"][0])


@pytest.mark.parametrize("prompt, message", [("", "empty prompt"), ("   ", "empty prompt"),
                                             ("zzzz qqqq", "names no product")])
def test_unusable_prompts_exit_with_status_2(trained_run, tmp_path, prompt, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--run", trained_run, "--out", str(tmp_path / "g.png"), prompt])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "g.png")


def test_shop_prompts_are_read_and_said(trained_run, tmp_path, capsys):
    """A title and an emoji are drawn as the products they name, each with a line saying what
    was read; a prompt naming no product is refused with one line, the others drawn."""
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--run", trained_run, "--out", str(tmp_path / "g.png"), "-n", "1",
                       "--size", "16", "限时特惠！新款黑色连衣裙 女", "☕", "限时特惠 包邮"])
    out, err = capsys.readouterr()
    assert "'限时特惠！新款黑色连衣裙 女' drawn as: dress · black — ignored: 限时特惠 新款 女" in out
    assert "'☕' drawn as: hot beverage" in out
    assert exit_info.value.code == 2 and os.path.exists(tmp_path / "g.png")
    assert err.count("\n") == 1 and "'限时特惠 包邮' names no product" in err


def test_overlong_prompt_is_truncated_with_a_warning(trained_run, tmp_path, capsys):
    """A prompt is read up to its first 96 words (understanding.MAX_TOKENS); the text drawn
    from it is what the model's own 8 tokens read."""
    generate.main(["--run", trained_run, "--out", str(tmp_path / "g.png"), "dress " * 80])
    assert "only the first" not in capsys.readouterr().err
    generate.main(["--run", trained_run, "--out", str(tmp_path / "g.png"), "连衣裙" * 40])
    assert "has 120 words; only the first 96 are read" in capsys.readouterr().err
    assert os.path.exists(tmp_path / "g.png")


def test_missing_run_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--run", str(tmp_path), "--out", str(tmp_path / "g.png"), "dress"])
    assert exit_info.value.code == 1 and "final/model.keras not found" in capsys.readouterr().err


def test_installed_console_script(trained_run, tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "adgan-generate")
    if not os.path.exists(script):
        pytest.skip("adgan is not pip-installed in this environment")
    result = subprocess.run([script, "--run", trained_run, "--out", str(tmp_path / "g.png"),
                             "-n", "1", "手机"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.exists(tmp_path / "g.png")
    assert not quiet.NOTICE.search(result.stderr), result.stderr  # TensorFlow started quietly


def test_generate_prints_gate_statistics(trained_run, tmp_path, capsys):
    generate.main(["--run", trained_run, "--out", str(tmp_path / "g.png"), "-n", "3",
                   "--max-tries", "4", "连衣裙"])
    assert re.search(r"'连衣裙': [0-3]/3 accepted in \d+ tries \(acceptance \d+%\), "
                     r"scores( \d\.\d\d){3}\n", capsys.readouterr().out)
    generate.main(["--run", trained_run, "--out", str(tmp_path / "g.png"), "-n", "2",
                   "--no-gate", "jeans"])
    assert re.search(r"'jeans': gate off, scores( \d\.\d\d){2}\n", capsys.readouterr().out)


def test_compare_gate_grid_puts_ungated_left_of_gated(trained_run, tmp_path, capsys):
    out = str(tmp_path / "cmp.png")
    generate.main(["--run", trained_run, "--out", out, "-n", "2", "--compare-gate", "--size",
                   "16", "连衣裙", "jeans"])
    assert "mean score ungated" in capsys.readouterr().out
    # 2 rows x (2 ungated + gap + 2 gated) cells of 16 pixels with 2-pixel padding
    assert np.asarray(Image.open(out)).shape == (2 * 18 + 2, 5 * 18 + 2, 3)
    with pytest.raises(SystemExit):
        generate.main(["--run", trained_run, "--out", out, "--no-gate", "--compare-gate", "x"])


def test_user_events_moved_to_the_ad_layer(trained_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--run", trained_run, "--out-dir", str(tmp_path), "--user-events", "e"])
    assert exit_info.value.code == 2 and "python -m ads.personalize" in capsys.readouterr().err


def test_without_run_it_draws_from_the_shipped_model(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("adgan.runs.layout.SHIPPED_RUN", str(tmp_path / "models" / "adgan"))
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--out", str(tmp_path / "g.png"), "dress"])
    assert exit_info.value.code == 1 and "no shipped model" in capsys.readouterr().err
    monkeypatch.setattr("adgan.runs.layout.SHIPPED_RUN", trained_run)
    assert generate.main(["--out", str(tmp_path / "g.png"), "-n", "1", "dress"])
