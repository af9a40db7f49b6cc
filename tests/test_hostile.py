"""Hostile and odd input: every command answers with one line naming the file or field and
the problem (never a traceback, never the `run_command` safety net's "internal error"), or
accepts it under a stated rule."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from adgan import helpers
from adgan.runs.layout import run_path
from adgan.text import tokenizer
from ads import creative, ctr, personalize
from conftest import RUN_ARGS, TINY_ARGS, copy_run
from data_loader import load_examples
import generate
import train


def one_line_error(capsys, console_main, argv):
    """Run a command's console entry point; return its one-line error message."""
    with pytest.raises(SystemExit) as stopped:
        console_main(argv)
    code = stopped.value.code
    assert code not in (0, None)
    message = (code if isinstance(code, str) else capsys.readouterr().err).strip()
    if message.startswith("usage:"):  # argparse's usage errors: the usage, then one line
        message = message.split("\n", 1)[-1]
    assert message and "\n" not in message, message
    assert "Traceback" not in message and "internal error" not in message, message
    return message


# ----------------------------------------------------------------------------- manifests

@pytest.mark.parametrize("content, problem", [
    (b"", "empty file"), (b"  \n", "empty file"),
    (b"image,name_en\n\xff\xfe.png,dress\n", "not UTF-8 text"),
])
def test_an_unreadable_manifest_is_one_line_with_or_without_colour_augmentation(
        tmp_path, capsys, content, problem):
    manifest = tmp_path / "captions.csv"
    manifest.write_bytes(content)
    for augment in ("1", "0"):
        message = one_line_error(capsys, train.console_main, TINY_ARGS + [
            "--manifest", str(manifest), "--out-dir", str(tmp_path / f"r{augment}"),
            "--color-augment", augment])
        assert str(manifest) in message and problem in message


def test_a_manifest_folder_is_one_line(tmp_path, capsys):
    message = one_line_error(capsys, train.console_main, TINY_ARGS + [
        "--manifest", str(tmp_path), "--out-dir", str(tmp_path / "r")])
    assert f"{tmp_path}: is a folder" in message


def test_rows_with_overlong_or_control_character_captions_are_skipped_and_reported(
        tmp_path, tiny_manifest):
    frame = open(tiny_manifest, encoding="utf-8").read().splitlines()
    header, first, second, *rest = frame
    columns = header.split(",")
    name = columns.index("name_en")
    first, second = first.split(","), second.split(",")
    first[name], second[name] = "x" * 100_000, "red\u202e\u0000dress"
    path = os.path.join(os.path.dirname(tiny_manifest), "hostile.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join([header, ",".join(first), ",".join(second), *rest]) + "\n")
    examples, report = load_examples(path, 16)
    assert report["skipped"] == 2 and len(examples) == len(rest)
    reasons = [row["reason"] for row in report["bad_rows"]]
    assert any("unsafe caption (100,000 characters cut to 500)" in r for r in reasons)
    assert any("unsafe caption (control or invisible format characters" in r for r in reasons)
    # so no part of them becomes a vocabulary token
    vocabulary = tokenizer.examples_vocabulary(examples, 1000)
    assert not any(token.startswith("xxx") or token == "reddress" for token in vocabulary)


def test_the_graph_standardizer_cleans_alike_and_refuses_invalid_utf8():
    cleaned = tokenizer.standardize_text(tf.constant(["red\u202e\u0000dress\u200b!"]))
    assert tf.strings.split(cleaned).numpy()[0].tolist() == [b"red", b"dress"]
    vectorizer = tokenizer.make_text_vectorizer(["red", "dress"], 8)
    np.testing.assert_array_equal(vectorizer(tf.constant(["red\u202e dress\u0000"])),
                                  vectorizer(tf.constant(["red dress"])))
    long = tokenizer.standardize_text(tf.constant(["a" * 2000])).numpy()[0].strip()
    assert len(long) == tokenizer.MAX_TEXT_CHARACTERS
    with pytest.raises(tf.errors.InvalidArgumentError, match="text: not valid UTF-8"):
        tokenizer.standardize_text(tf.constant([b"ok", b"\xff\xfe dress"]))


# ----------------------------------------------------------------------------- output paths

def test_unwritable_output_paths_are_one_line(trained_run, tmp_path, tiny_manifest, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    where = str(blocker / "out")
    message = one_line_error(capsys, train.console_main, TINY_ARGS + [
        "--manifest", tiny_manifest, "--out-dir", where])
    assert str(blocker) in message
    for argv in (["dress", "--run", trained_run, "--out-dir", where],
                 ["dress", "--run", trained_run, "--out", os.path.join(where, "grid.png")]):
        assert str(blocker) in one_line_error(capsys, generate.console_main, argv)
    message = one_line_error(capsys, creative.console_main, [
        "--run", trained_run, "--prompt", "dress", "--out-dir", where, "--size", "1080x1080"])
    assert str(blocker) in message


# ----------------------------------------------------------------------------- run folders

@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 cut short"])
def test_a_damaged_checkpoint_without_a_previous_one_says_what_to_do(
        trained_run, tmp_path, tiny_manifest, capsys, damage):
    run = copy_run(trained_run, tmp_path)
    checkpoints = run_path(run, "checkpoints")
    os.remove(os.path.join(checkpoints, "state.previous.npz"))
    with open(os.path.join(checkpoints, "state.npz"), "wb") as f:
        f.write(damage)
    args = json.load(open(run_path(run, "config")))
    message = one_line_error(capsys, train.console_main, RUN_ARGS + [
        "--manifest", args["manifest"], "--out-dir", run])
    assert "state.npz: damaged checkpoint" in message and f"delete {checkpoints}" in message


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(trained_run, tmp_path, capsys):
    run = copy_run(trained_run, tmp_path)
    latest = os.path.join(run_path(run, "checkpoints"), "state.npz")
    with open(latest, "r+b") as f:
        f.truncate(os.path.getsize(latest) // 2)
    manifest = json.load(open(run_path(run, "config")))["manifest"]
    train.console_main(RUN_ARGS + ["--manifest", manifest, "--out-dir", run, "--verbose", "0"])
    out = capsys.readouterr().out
    assert "damaged checkpoint" in out and "resuming from the previous one" in out
    assert f"resuming {run} after epoch 1" in out


def test_epochs_below_the_trained_count_keep_the_recorded_settings(trained_run, tmp_path, capsys):
    run = copy_run(trained_run, tmp_path)
    recorded = open(run_path(run, "config")).read()
    manifest = json.loads(recorded)["manifest"]
    train.console_main(RUN_ARGS + ["--manifest", manifest, "--out-dir", run, "--epochs", "1"])
    assert "is already trained for 2 epochs (--epochs 1)" in capsys.readouterr().out
    assert open(run_path(run, "config")).read() == recorded


def test_a_damaged_config_is_one_line(trained_run, tmp_path, capsys):
    run = copy_run(trained_run, tmp_path)
    manifest = json.load(open(run_path(run, "config")))["manifest"]
    with open(run_path(run, "config"), "w") as f:
        f.write("{not json")
    message = one_line_error(capsys, train.console_main, RUN_ARGS + [
        "--manifest", manifest, "--out-dir", run])
    assert run_path(run, "config") in message and "cannot read" in message


@pytest.mark.parametrize("name, content, problem", [
    ("calibration", "[1, 2", "cannot read"),
    ("calibration", '{"slope": "steep", "intercept": 0, "max_log_odds": 1, "gamma": 0.5, '
                    '"fake_log_odds": [0.1]}', "not a gate calibration"),
    ("model", "PK\x03\x04 truncated", "damaged or not a Keras model file"),
])
def test_damaged_run_files_are_one_line(trained_run, tmp_path, capsys, name, content, problem):
    run = copy_run(trained_run, tmp_path)
    with open(run_path(run, name), "w") as f:
        f.write(content)
    message = one_line_error(capsys, generate.console_main,
                             ["dress", "--run", run, "--out-dir", str(tmp_path / "out")])
    assert run_path(run, name) in message and problem in message


def test_stale_temporaries_of_killed_writers_are_removed(tmp_path):
    dead = 2 ** 22 + 12345  # above Linux's default pid_max: no such process
    for name in (f".tmp-3-{dead}", f".state.{dead}.tmp.npz", f".tmp-4-{os.getpid()}", "3"):
        os.makedirs(tmp_path / name) if not name.endswith(".npz") else (tmp_path / name).touch()
    assert helpers.remove_stale_temporaries(str(tmp_path)) == [f".state.{dead}.tmp.npz",
                                                                f".tmp-3-{dead}"]
    assert sorted(os.listdir(tmp_path)) == [f".tmp-4-{os.getpid()}", "3"]


# ----------------------------------------------------------------------------- prompts

def test_generate_draws_the_drawable_prompts_and_names_the_refused(trained_run, tmp_path, capsys):
    out = tmp_path / "out"
    message = one_line_error(capsys, generate.console_main, [
        "dress", "zzqqxx", "jeans", "--run", trained_run, "--out-dir", str(out), "-n", "1"])
    assert "refused 1" in message and "zzqqxx" in message
    assert sorted(os.listdir(out)) == ["00_dress_0.png", "01_jeans_0.png"]


def test_prompts_with_undecodable_bytes_are_refused():
    gan_vectorizer = tokenizer.make_text_vectorizer(["dress"], 8)
    with pytest.raises(tokenizer.PromptError, match="not UTF-8 text"):
        tokenizer.check_prompts(["dress \udcff"], gan_vectorizer, 8)
    warnings = tokenizer.check_prompts(["dress\u202e"], gan_vectorizer, 8)
    assert "control or invisible format characters removed" in warnings[0]


# ----------------------------------------------------------------------------- event logs

def test_every_hostile_event_line_is_skipped_with_its_reason(tmp_path):
    good = {"user": "u1", "type": "search", "text": "dress", "ts": "2026-11-20T10:00:00"}
    lines = [json.dumps(good), json.dumps({**good, "user": 42})]
    hostile = {
        json.dumps({**good, "type": ["search"]}): "type must be one of",
        json.dumps({**good, "type": {"a": 1}}): "type must be one of",
        json.dumps({**good, "user": {"a": 1}}): "user must be text, got dict",
        json.dumps({**good, "text": {"a": 1}}): "text must be text, got dict",
        json.dumps({**good, "text": ["x"]}): "text must be text, got list",
        json.dumps({**good, "user": None}): "user must be text, got NoneType",
        json.dumps({**good, "text": "\u202e\u0000"}): "empty text",
        json.dumps({**good, "text": "x" * 5000}): "text is 5,000 characters",
        '{"user": "u1", "type": "search", "text": "x", "ts": 1' + "0" * 400 + "}":
            "ts is outside 1970-2200",
        json.dumps({**good, "ts": 1e300}): "ts is outside 1970-2200",
        json.dumps({**good, "ts": -1e300}): "ts is outside 1970-2200",
        json.dumps({**good, "ts": "yesterday"}): "ts is not ISO 8601",
        json.dumps({**good, "ts": [1]}): "ts must be ISO 8601 text or Unix seconds",
        json.dumps({**good, "ts": True}): "ts must be ISO 8601 text or Unix seconds",
        "[" * 100_000 + "]" * 100_000: "nested too deeply",
        "{bad": "Expecting property name",
        json.dumps([good]): "not a JSON object",
    }
    lines += list(hostile)
    path = tmp_path / "events.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8") + b"\n\xff\xfe{}\n")
    events, skipped = personalize.read_events(str(path))
    assert [e["user"] for e in events] == ["u1", "42"]
    reasons = {entry["line"]: entry["reason"] for entry in skipped}
    for number, expected in enumerate(hostile.values(), 3):
        assert expected in reasons[number], (number, reasons.get(number))
    assert reasons[len(lines) + 1] == "not UTF-8 text"


def test_a_folder_or_missing_event_log_is_one_line(tmp_path):
    with pytest.raises(personalize.EventLogError, match="is a folder"):
        personalize.read_events(str(tmp_path))
    with pytest.raises(personalize.EventLogError, match="not found"):
        personalize.read_events(str(tmp_path / "none.jsonl"))


def test_ctr_counts_must_be_ascii_whole_numbers(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text("creative,segment,impressions,clicks\na,s,100,5\na,s,²,1\nb,s,100,٣\n"
                   f"b,s,{'9' * 400},1\nb,s,100,3\n", encoding="utf-8")
    frame, rejected = ctr.read_log(str(log))
    assert len(frame) == 2
    assert [r["reason"] for r in rejected] == ["impressions is not an integer: '²'",
                                               "clicks is not an integer: '٣'",
                                               "impressions is too large: 400 digits"]
    message = one_line_error(capsys, ctr.console_main, ["--log", str(tmp_path)])
    assert str(tmp_path) in message


def test_progress_bars_become_one_line_an_epoch_off_a_terminal():
    assert helpers.progress_verbosity(1) == 2  # pytest captures stdout: not a terminal
    assert helpers.progress_verbosity(0) == 0 and helpers.progress_verbosity(2) == 2


def test_a_state_file_records_the_random_streams(trained_run):
    with np.load(os.path.join(run_path(trained_run, "checkpoints"), "state.npz")) as state:
        assert {"rng0", "rng1"} <= set(state.files)


@pytest.mark.parametrize("change, field", [({"seed": "seven"}, "seed"), ({"size": [1]}, "size"),
                                           ({"num_candidates": 10 ** 9}, "num_candidates"),
                                           ({"prompt": {"a": 1}}, "prompt")])
def test_a_sidecar_with_unusable_fields_is_one_line(trained_run, tmp_path, capsys, change, field):
    sidecar = tmp_path / "creative.json"
    saved = {"prompt": "dress", "seed": 1, "template": "hero", "size": "1080x1080",
             "num_candidates": 2, "copy": {"headline": "x", "price": "", "cta": ""},
             "model": {"run": trained_run}}
    sidecar.write_text(json.dumps({**saved, **change}))
    message = one_line_error(capsys, creative.console_main, [
        "--from-sidecar", str(sidecar), "--out-dir", str(tmp_path / "c")])
    assert str(sidecar) in message and repr(field) in message
    sidecar.write_text("[1, 2]")
    assert str(sidecar) in one_line_error(capsys, creative.console_main, [
        "--from-sidecar", str(sidecar), "--out-dir", str(tmp_path / "c")])


@pytest.mark.parametrize("tf_config, problem", [(None, "needs TF_CONFIG"),
                                                ("{cluster", "TF_CONFIG is not valid JSON")])
def test_multiworker_without_a_usable_tf_config_is_one_line(tmp_path, tiny_manifest, capsys,
                                                            monkeypatch, tf_config, problem):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    message = one_line_error(capsys, train.console_main, TINY_ARGS + [
        "--manifest", tiny_manifest, "--out-dir", str(tmp_path / "r"), "--strategy",
        "multiworker"])
    assert problem in message
