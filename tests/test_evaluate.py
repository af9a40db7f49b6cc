import os

import numpy as np
import pytest

from adgan.data.styles import style_prompt
from adgan.drawing import sampling
from adgan.drawing.calibrate import load_gate
from adgan.evaluation import evaluation_report, judge
from adgan.evaluation import judging
from adgan.evaluation.metrics import r_precision
from adgan.helpers import to_float
from adgan.runs.artifacts import load_model, load_style_words
from adgan.runs.layout import load_config
from adgan.text.encoder import load_encoder
from conftest import uncalibrated_copy
import data_loader
import evaluate


@pytest.fixture(scope="session")  # session: made once, whatever runs between
def report(trained_run, tiny_encoder, tiny_judge, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("eval") / "report.json")
    return out, evaluate.main(["--run", trained_run, "--encoder", tiny_encoder, "--split",
                               "train", "--out", out, "--samples-per-prompt", "2",
                               "--repeats", "2", "--bundle-pairs", "10", "--judge", tiny_judge,
                               "--panel-samples", "2"])


def test_report_has_references_and_gate_rows(report):
    out, report = report
    labels = list(report["rows"])
    assert labels[:2] == ["real images (ceiling)", "real images, shuffled prompts (floor)"]
    assert labels[2] == "run (ungated)" and labels[3].startswith("run (gated: DRS")
    assert report["rows"][labels[3]]["images"] == 2 * report["prompts"]
    for suffix in (".json", ".md", ".png"):
        assert os.path.exists(out[:-5] + suffix)
    assert "FID (in-domain encoder)" in open(out[:-5] + ".md").read()


def test_report_figures_are_the_metrics_of_the_drawn_images(report, trained_run, tiny_encoder):
    # Recompute the figures outside evaluate.py: a row wired to the wrong images, prompts or
    # metric would differ.
    _, report = report
    config = load_config(trained_run)
    prompts, concepts, real, real_prompts = evaluate.evaluation_set(
        config, "train", config.caption_columns[:2])
    assert report["prompts"] == len(prompts) and report["real_images"] == len(real)
    gan, gate = load_model(trained_run), load_gate(trained_run)
    drawn = sampling.generate_images(gan, prompts, 2, seed=0, gate=gate, max_tries=8)
    gated = report["rows"][list(report["rows"])[3]]
    assert gated["accepted"] == float(drawn["accepted"].mean())
    assert gated["tries_per_image"] == float(drawn["tries"].mean())
    encoder = load_encoder(tiny_encoder)
    codes = encoder.embed_images(to_float(drawn["images"].reshape(-1, 16, 16, 3)))[1]
    expected = r_precision(codes, np.repeat(np.arange(len(prompts)), 2),
                           encoder.embed_texts(prompts), concepts, repeats=2, seed=0)
    assert (gated["r_precision"], gated["r_precision_std"]) == pytest.approx(expected)
    ceiling = report["rows"]["real images (ceiling)"]
    assert ceiling["images"] == sum(len(p) for p in real_prompts)
    assert gated["fid_in_domain"] > 0.0 and "fid_in_domain" not in ceiling


def test_colour_section_scores_recoloured_real_images_perfectly(report):
    _, report = report
    color = report["color"]
    assert color["prompts"] == 4 * len(color["colors"])  # dress and jeans, 2 languages
    assert color["rows"]["real images, recoloured (ceiling)"]["accuracy"] == 1.0
    labels = list(report["rows"])
    assert list(color["rows"])[1:] == labels[2:4]
    assert color["rows"][labels[2]]["images"] == 2 * color["prompts"]


def test_judge_section_is_the_judges_reading_of_one_draw_per_prompt_and_style(
        report, trained_run, tiny_judge):
    # Recompute one cell outside evaluate.py: the seen concepts asked in the twemoji style
    # in English, sample 0, gated as served, against the unseen real twemoji drawings.
    out, report = report
    section = report["judge"]
    assert section["candidates"] == 8 and section["max_tries"] == 8 and section["sample"] == 0
    loaded = judge.load_judge(tiny_judge)
    pool, sets = judging.judge_pool(loaded, judging.JUDGE_GROUPS)
    assert list(section["sets"]) == ["seen"] and len(sets["seen"]) == 8  # all in train
    words = load_style_words(trained_run)
    names = [loaded.concepts["name_en"].iloc[k] for k in sets["seen"]]
    prompts = [style_prompt(name, "twemoji", words) for name in names]
    assert prompts[0].startswith(words["twemoji"][0] + " ")
    gan, gate = load_model(trained_run), load_gate(trained_run)
    drawn = sampling.generate_images(gan, prompts, 1, seed=0, gate=gate, max_tries=8,
                                     style_words=words)
    expected = judge.top1_among(loaded.logits(drawn["images"][:, 0]), sets["seen"], pool,
                                repeats=2, seed=0)
    cell = section["sets"]["seen"]["styles"]["twemoji"]
    assert (cell["run en"]["top1"], cell["run en"]["top1_std"]) == pytest.approx(expected)
    for label, held_out in judging.REAL_ROWS.items():
        real = loaded.images[(loaded.images["style"] == "twemoji")
                             & (loaded.images["held_out"] == held_out)]
        images = np.stack([data_loader.load_image(p, 16) for p in real["path"]])
        rate = judge.top1_among(loaded.logits(images), real["concept"], pool, repeats=2, seed=0)
        assert cell[label]["top1"] == pytest.approx(rate[0]) and cell[label]["images"] == len(real)
        if label == "real":
            ceiling = rate
    assert cell["run zh"]["images"] == 8
    if cell["real"]["top1"]:
        assert cell["run en"]["ratio"] == pytest.approx(expected[0] / ceiling[0])
    # the panel: the prompts the judge knows, two draws each, and the picture
    panel = section["panel"]
    assert set(panel["runs"]["run"]) == {"dress", "牛仔裤", "手机", "laptop", "热饮",
                                          "shortcake", "披萨", "hamburger"}
    assert "watch" in panel["unknown_to_the_judge"]
    assert len(panel["runs"]["run"]["dress"]["first_guesses"]) == 2
    check = panel["runs"]["run"]["dress"]["copy_check"]
    assert len(check["nearest"]) == 2 and all(os.path.exists(p) for p in check["nearest"])
    assert check["pixel_distance"] > 0 and check["restyle_pixel_distance"] > 0
    text = open(out[:-5] + ".md").read()
    assert "The independent judge" in text and "| seen (8) | twemoji |" in text
    assert os.path.exists(out[:-5] + "_panel.png") and os.path.exists(out[:-5] + "_nearest.png")
    assert "Generated, or copied?" in text
    # bundles as the judge reads them: real composites the ceiling, the run's composed draws
    found = section["bundles"]
    assert set(found["rows"]) == {"real composites (ceiling)", "run composed"}
    assert found["rows"]["run composed"]["images"] == found["prompts"] == 2 * found["pairs"]
    assert 0 <= found["rows"]["run composed"]["two_object_rate"] <= 1
    assert "Bundles, as the judge reads them" in text
    # draws of one prompt in one style, against the real drawings across styles
    diversity = section["diversity"]
    assert set(diversity["runs"]["run"]) == {"noto", "twemoji"}
    row = diversity["runs"]["run"]["noto"]
    assert row["ratio"] == pytest.approx(row["within_style"] / diversity["real across styles"])
    assert 0 < diversity["real across styles"] <= 2 and "Diversity within a style" in text


def test_the_judge_alone_needs_no_dual_encoder(trained_run, tiny_judge, tmp_path, capsys):
    out = str(tmp_path / "judge.json")
    report = evaluate.main(["--run", trained_run, "--judge-only", "--judge", tiny_judge,
                            "--out", out, "--repeats", "1", "--panel-samples", "0",
                            "--bundle-pairs", "0", "--no-gate"])
    assert "rows" not in report and "panel" not in report["judge"]
    assert report["judge"]["max_tries"] == 1 and not report["judge"]["gated"]
    assert "| seen (8) | noto |" in open(out[:-5] + ".md").read()
    with pytest.raises(SystemExit):
        evaluate.main(["--run", trained_run, "--judge-only", "--no-judge"])
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--run", trained_run, "--judge-only", "--judge", str(tmp_path / "none")])
    assert exit_info.value.code == 1 and "train-judge" in capsys.readouterr().err


def test_uncalibrated_runs_need_no_gate(trained_run, tiny_encoder, tmp_path, capsys):
    run = uncalibrated_copy(trained_run, tmp_path / "run")
    args = ["--run", str(run), "--encoder", tiny_encoder, "--split", "train", "--out",
            str(tmp_path / "r.json"), "--samples-per-prompt", "2", "--repeats", "1", "--no-judge"]
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(args)
    assert exit_info.value.code == 1 and "adgan-calibrate --run" in capsys.readouterr().err
    rows = evaluate.main(args + ["--no-gate"])["rows"]
    assert list(rows)[2:] == ["run (ungated)"]


def test_missing_encoder_is_a_clear_error(trained_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--run", trained_run, "--encoder", str(tmp_path / "none"),
                       "--split", "train", "--out", str(tmp_path / "r.json")])
    assert exit_info.value.code == 1 and "train-encoder" in capsys.readouterr().err


def test_train_encoder_command_on_a_missing_manifest_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["train-encoder", "--data", str(tmp_path / "none.csv"),
                       "--out", str(tmp_path / "enc")])
    assert exit_info.value.code == 1 and "manifest not found" in capsys.readouterr().err


def test_true_fid_needs_a_local_inception_file(trained_run, tiny_encoder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--run", trained_run, "--encoder", tiny_encoder, "--split", "train",
                       "--out", str(tmp_path / "r.json"),
                       "--inception-weights", str(tmp_path / "inception.h5")])
    assert exit_info.value.code == 1 and "inception.h5 not found" in capsys.readouterr().err
    table = evaluation_report.format_table({"r_precision_candidates": 100, "rows": {
        "x": {"r_precision": 0.5, "r_precision_std": 0.1, "diversity": 0.3,
              "fid_in_domain": 2.0, "kid_in_domain": 0.001, "kid_in_domain_std": 0.0002,
              "fid_inception": 40.0}}})
    assert "FID (Inception)" in table and "| 40.00 |" in table


def test_report_picture_puts_runs_of_two_sizes_side_by_side():
    # a 16 px real image and run beside a 32 px run: every cell enlarged to 32 px
    pictures = {"real": np.zeros((1, 16, 16, 3), np.uint8),
                "small (ungated)": np.full((1, 2, 16, 16, 3), 100, np.uint8),
                "large (ungated)": np.full((1, 2, 32, 32, 3), 200, np.uint8)}
    grid, shown = evaluation_report.report_picture(["dress"], [[0]], pictures)
    assert shown == ["dress"]
    assert grid.shape == (2 * (32 + 4), 2 * (5 * (32 + 2) + 2), 3)  # enlarged 2x


def test_bundle_section_scores_pairs_against_a_real_composite_ceiling(report, trained_run,
                                                                      tiny_encoder):
    out, report = report
    section = report["bundles"]
    seen = section["pairs"]["seen pairs"]
    assert seen["pairs"] >= 10 and seen["prompts"] == 2 * seen["pairs"]
    assert any("和" in p or "与" in p or "配" in p or "加" in p for p in seen["examples"])
    labels = list(seen["rows"])
    assert labels[:2] == ["real composites (ceiling)", "real, first product alone"]
    assert labels[2:4] == list(report["rows"])[2:4]  # the run's ungated and gated draws
    assert labels[4:] == [label.replace(" (", " composed (", 1) for label in labels[2:4]]
    assert seen["rows"][labels[3]]["images"] == 2 * seen["prompts"]
    for row in seen["rows"].values():
        assert 0.0 <= row["two_object_rate"] <= 1.0
    assert "Two products in one picture" in open(out[:-5] + ".md").read()
