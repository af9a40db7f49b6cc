"""Shared fixtures: tiny manifests, and one tiny trained run, export and release per test
session (sizes absurdly small on purpose). tests/README.md says which to use when."""

import csv
import fcntl
import json
import os
import shutil
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import pytest  # noqa: E402

SHIPPED = os.path.join(ROOT, "data", "emoji")
# A smoke run's six steps run eagerly in less time than tracing the step takes (~10 s);
# the tests of the traced step (mixed precision, mirrored, multiworker) use TRACED_ARGS.
TRACED_ARGS = ["--preset", "smoke", "--verbose", "0"]
TINY_ARGS = TRACED_ARGS + ["--run-eagerly"]
# instance conditioning (exemplars.py) and a widened generator tail, at the smoke sizes
INSTANCE_ARGS = ["--exemplar-size", "8", "--generator-min-channels", "8"]
RUN_ARGS = TINY_ARGS + INSTANCE_ARGS  # `trained_run`'s: what resuming a copy of it takes
SERVING_PROMPTS = ["黑色羽绒服", "red dress", "咖啡 and cake"]  # Chinese, English, mixed
# text sizes equal the smoke preset's, so the encoder can start a smoke run
TINY_ENCODER = ["--image-size", "16", "--epochs", "1", "--batch-size", "8",
                "--image-channels", "4", "--embedding-dim", "16", "--text-hidden-units", "16",
                "--sequence-length", "8", "--verbose", "0"]


def pytest_collection_modifyitems(items):
    """The `slow` end-to-end tests (they start processes) first, and with them their
    files: with two workers (`--dist loadfile`), a long file left for the end keeps one
    worker busy while the other idles; started first, the short ones fill in beside it.
    (`--no-loadscope-reorder` keeps this order: pytest-xdist otherwise hands out the files
    with the most tests first.)"""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: files keep their order


def shipped_rows(count, names=("dress", "jeans", "pizza", "hamburger", "mobile phone", "laptop"),
                 styles=("noto", "twemoji")):
    """Rows of the shipped manifest for the given English names in the given styles."""
    with open(os.path.join(SHIPPED, "captions.csv"), encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["name_en"] in names and r["style"] in styles]
    return rows[:count]


def write_manifest(folder, rows, columns=None, style_words=False):
    """Copy the rows' images into `folder` and write `folder/captions.csv` (and, with
    `style_words`, the shipped `styles.csv` beside it)."""
    os.makedirs(os.path.join(folder, "img"), exist_ok=True)
    out = []
    for row in rows:
        row = dict(row)
        source = os.path.join(SHIPPED, row["image"])
        if os.path.exists(source):
            target = os.path.join("img", row["image"].replace("/", "_"))
            shutil.copy(source, os.path.join(folder, target))
            row["image"] = target
        out.append(row)
    path = os.path.join(folder, "captions.csv")
    columns = columns or list(out[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(out)
    if style_words:
        shutil.copy(os.path.join(SHIPPED, "styles.csv"), folder)
    return path


def uncalibrated_copy(run_dir, folder):
    """A copy of a trained run's settings and final model in `folder`, without the gate's
    calibration; returns `folder`."""
    os.makedirs(os.path.join(folder, "final"))
    shutil.copy(os.path.join(run_dir, "config.json"), folder)
    os.link(os.path.join(run_dir, "final", "model.keras"),
            os.path.join(folder, "final", "model.keras"))
    return folder


def copy_run(trained_run, tmp_path):
    """A copy of a trained run in `tmp_path`/run that records its new folder (a run refuses
    another out_dir), to resume, damage or change without touching the original."""
    from adgan.runs.layout import run_path

    run = str(tmp_path / "run")
    shutil.copytree(trained_run, run)
    settings = json.load(open(run_path(run, "config")))
    with open(run_path(run, "config"), "w") as f:
        json.dump({**settings, "out_dir": run}, f)
    return run


@pytest.fixture
def tiny_manifest(tmp_path):
    """A clean 12-row manifest of real shipped images."""
    return write_manifest(str(tmp_path / "data"), shipped_rows(12))


def made_once(tmp_path_factory, name, make):
    """What `make(folder)` returns (JSON), made in `folder` once per test session: with
    several workers (pytest-xdist) the first to ask makes it under a lock in their common
    temporary folder, and the others wait for it and read it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-N/, beside each worker's popen-gwI/
    folder, made = root / name, root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even on an error
        if not made.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            folder.mkdir()
            made.write_text(json.dumps(make(folder)))
        return json.loads(made.read_text())


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A finished smoke run on a tiny manifest (trained once per test session).

    Its 16 rows cover a token of each of `SERVING_PROMPTS` (服 of 衣服, dress, 咖啡, cake);
    the shipped styles table beside them makes it name the styles in its captions. It has
    the new release's recipe (`INSTANCE_ARGS`), so everything that draws from it (generate,
    export and serving, the gate, evaluate) goes through instance conditioning.
    """
    import train

    def make(folder):
        names = ("dress", "jeans", "pizza", "hamburger", "mobile phone", "laptop",
                 "hot beverage", "shortcake")
        manifest = write_manifest(str(folder / "data"), shipped_rows(16, names),
                                  style_words=True)
        return train.main(RUN_ARGS + ["--manifest", manifest, "--out-dir", str(folder / "run")])

    return made_once(tmp_path_factory, "trained_run", make)


@pytest.fixture(scope="session")
def upsampled_run(trained_run, tmp_path_factory):
    """A copy of `trained_run` with a (random, so not nearest-neighbour) learned up-sampler."""
    import numpy as np
    from adgan.runs.layout import run_path
    from adgan.upsampling import upsampler

    def make(folder):
        run = str(folder / "run")
        shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints", "logs"))
        model = upsampler.Upsampler(channels=4, num_convs=1)
        model.set_weights([np.random.default_rng(i).normal(size=w.shape) * 0.05
                           for i, w in enumerate(model.get_weights())])
        model.save(run_path(run, "upsampler"))
        return run

    return made_once(tmp_path_factory, "upsampled_run", make)


@pytest.fixture(scope="session")
def exported(upsampled_run, tmp_path_factory):
    """(export base folder, version folder) of `upsampled_run`: what `export.py` writes and
    TF Serving loads. Version 1 is read only (test_export.py adds version 2 beside it)."""
    import export

    def make(folder):
        base = str(folder / "adgan")
        return base, export.main(["--run", upsampled_run, "--export-dir", base])

    return tuple(made_once(tmp_path_factory, "exported", make))


@pytest.fixture(scope="session")
def trained_export(trained_run, tmp_path_factory):
    """The version folder of `trained_run` exported as it is (no learned up-sampler: its
    pictures are enlarged with Lanczos), for the ad layer's served sources."""
    import export

    return made_once(tmp_path_factory, "trained_export", lambda folder: export.main(
        ["--run", trained_run, "--export-dir", str(folder / "plain")]))


@pytest.fixture(scope="session")
def release(trained_run, tmp_path_factory):
    """`trained_run`'s release folder (what `export.py --release` writes, as models/adgan).
    Read it only: copy it (`shutil.copytree`) to change it."""
    from adgan.runs.release import write_release

    return made_once(tmp_path_factory, "release",
                     lambda folder: write_release(trained_run, str(folder / "adgan")))


@pytest.fixture(scope="session")
def tiny_encoder(trained_run, tmp_path_factory):
    """A dual encoder trained for one epoch on the trained run's manifest (its folder)."""
    from adgan.runs.layout import load_config
    from adgan.text import encoder

    def make(folder):
        out = str(folder / "enc")
        manifest = load_config(trained_run).manifest
        assert encoder.main(["--data", manifest, "--out", out] + TINY_ENCODER) == out
        return out

    return made_once(tmp_path_factory, "tiny_encoder", make)


TINY_JUDGE = ["--image-size", "16", "--channels", "4,8", "--epochs", "1", "--batch-size", "8",
              "--holdout-per-concept", "1", "--min-images-to-hold-out", "2", "--verbose", "0"]


@pytest.fixture(scope="session")
def tiny_judge(trained_run, tmp_path_factory):
    """The independent judge trained for one epoch on the trained run's manifest (its
    folder): 8 concepts in two styles, one drawing of each kept out (the ceiling)."""
    from adgan.evaluation import judge
    from adgan.runs.layout import load_config

    def make(folder):
        out = str(folder / "judge")
        manifest = load_config(trained_run).manifest
        assert judge.main(["--data", manifest, "--out", out] + TINY_JUDGE) == out
        return out

    return made_once(tmp_path_factory, "tiny_judge", make)


_SHARED = {}  # (what made it, key) -> the object made first in this worker


def made_for(maker, key, make):
    """`make()` the first time `maker` is asked for `key` in this worker, the same object
    after that."""
    if (maker, key) not in _SHARED:
        _SHARED[maker, key] = make()
    return _SHARED[maker, key]


@pytest.fixture
def shared_models(monkeypatch):
    """Every `load_model`, `load_upsampler`, `load_splitter` and `load_reader` of one run's
    file returns what the first call made (a file changed or damaged since is read anew:
    the key is its path, size and modification time), and every `GatedSampler` of the
    same model, gate and settings is the one made (and traced) first. For tests that only
    draw through a command's `main` (generate, creative, personalize) or `ads.sources`:
    loading a model costs ~3 s a call and tracing its sampler ~3 s more. Never for a test
    that changes a loaded model's weights."""
    from adgan.drawing import sampling
    from adgan.runs import run
    from adgan.runs.artifacts import load_model, load_reader, load_splitter, load_upsampler
    from adgan.runs.layout import run_path

    def read_once(load, name):
        def load_once(run_dir):
            file = run_path(run_dir, name)
            if not os.path.exists(file):
                return load(run_dir)  # its error, or its answer for a run without the file
            status = os.stat(file)
            key = (os.path.realpath(file), status.st_size, status.st_mtime_ns)
            return made_for(load, key, lambda: load(run_dir))
        return load_once

    monkeypatch.setattr(run, "load_model", read_once(load_model, "model"))
    monkeypatch.setattr(run, "load_upsampler", read_once(load_upsampler, "upsampler"))
    monkeypatch.setattr(run, "load_splitter", read_once(load_splitter, "config"))
    reader_of = read_once(
        lambda run_dir: load_reader(run_dir, run.load_model(run_dir).vocabulary), "config")
    monkeypatch.setattr(run, "load_reader", lambda run_dir, vocabulary: reader_of(run_dir))

    make_sampler = sampling.GatedSampler

    def sampler_once(gan, gate, batch_size=256, style_words=None, splitter=None,
                     upsampler=None, reader=None):
        # the objects themselves in the key: each is kept alive, so none is mistaken for a
        # later one that reuses its id
        key = (gan, gate, batch_size, tuple(sorted((style_words or {}).items())), splitter,
               upsampler, reader)
        return made_for(make_sampler, key, lambda: make_sampler(
            gan, gate, batch_size, style_words, splitter, upsampler, reader))

    for module in (sampling, run):  # where it is made
        monkeypatch.setattr(module, "GatedSampler", sampler_once)


@pytest.fixture(autouse=True, scope="session")
def pseudonym_salt(tmp_path_factory):
    """The shoppers' pseudonym salt lives in the session's temporary folder, not in ~/.config."""
    path = str(tmp_path_factory.mktemp("privacy") / "pseudonym-salt")
    os.environ["ADGAN_SALT_FILE"] = path
    return path


@pytest.fixture(autouse=True)
def float32_policy():
    """Each test starts and ends in float32 (mixed-precision tests change the global policy)."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


def exiftool(path):
    """exiftool's reading of a file ({"GROUP:Tag": value}), or None when exiftool is not
    installed (Debian's libimage-exiftool-perl, in the README's test setup)."""
    if not shutil.which("exiftool"):
        return None
    result = subprocess.run(["exiftool", "-j", "-G1", "-a", str(path)], capture_output=True,
                            timeout=60, check=True)
    return json.loads(result.stdout.decode("utf-8"))[0]


def assert_labelled(path, explicit="none"):
    """Both AI-generated labels read back from a PNG with Pillow and with exiftool (when
    installed), the hash matching the pixels (labels.check); returns the AIGC fields."""
    from adgan import labels
    from PIL import Image

    report = labels.check(str(path))
    assert report["ok"] and report["hash"] == "matches", report
    assert report["explicit"] == explicit, report
    with Image.open(path) as picture:
        aigc = json.loads(picture.text["AIGC"])["AIGC"]
        assert labels.DIGITAL_SOURCE_TYPE in picture.text["XML:com.adobe.xmp"]
    assert aigc["Label"] == "1" and aigc["ReservedCode1"].startswith("siphash24:")
    found = exiftool(path)
    if found is not None:
        assert json.loads(found["PNG:AIGC"])["AIGC"] == aigc
        assert found["XMP-iptcExt:DigitalSourceType"] == labels.DIGITAL_SOURCE_TYPE
        assert found["XMP-adgan:ExplicitLabel"] == explicit
        assert json.loads(found["XMP-TC260:Aigc"])["AIGC"] == aigc
    return aigc
