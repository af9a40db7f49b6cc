import os

import numpy as np
import pytest

from ads import sources
from conftest import uncalibrated_copy

# they load runs through ads.sources: one load of each model file, one traced sampler (conftest)
pytestmark = pytest.mark.usefixtures("shared_models")


def test_missing_or_uncalibrated_models_are_clear_errors(trained_run, tmp_path, monkeypatch):
    with pytest.raises(sources.SourceError, match="not an exported SavedModel"):
        sources.load_source(model=str(tmp_path))
    with pytest.raises(sources.SourceError, match="not found"):
        sources.load_source(run=str(tmp_path))
    monkeypatch.setattr("adgan.runs.layout.SHIPPED_RUN", str(tmp_path / "models" / "adgan"))
    with pytest.raises(sources.SourceError, match="no shipped model in .*python train.py"):
        sources.load_source()
    # given nothing: the shipped model
    monkeypatch.setattr("adgan.runs.layout.SHIPPED_RUN", trained_run)
    assert sources.load_source().run_dir == os.path.abspath(trained_run)
    run = uncalibrated_copy(trained_run, tmp_path / "run")
    with pytest.raises(sources.SourceError, match="adgan-calibrate --run"):
        sources.load_source(run=str(run))
    ungated = sources.load_source(run=str(run), gated=False)
    drawn = ungated.generate(["dress", "jeans"], [3, 4], num_candidates=8)
    assert list(drawn["tries"]) == [1, 1] and drawn["accepted"].all()


def test_a_run_and_its_export_draw_and_score_alike(trained_run, trained_export):
    served, run = sources.load_source(model=trained_export), sources.load_source(run=trained_run)
    assert served.image_size == run.image_size == 16
    assert served.sizes == run.sizes == (16, 32, 64)
    assert served.describe() == {"model": os.path.abspath(trained_export), "image_size": 16,
                                 "upsampler": "lanczos"}
    prompts, seeds = ["dress", "红色 jeans"], [5, 6]
    a, b = served.generate(prompts, seeds, 4), run.generate(prompts, seeds, 4)
    np.testing.assert_array_equal(a["tries"], b["tries"])
    np.testing.assert_array_equal(a["accepted"], b["accepted"])
    assert np.abs(a["images"].astype(int) - b["images"].astype(int)).max() <= 1
    assert a["images"].shape == (2, 64, 64, 3)  # the largest size by default
    small = served.generate(prompts, seeds, 4, size=16)["images"]
    assert np.abs(small.astype(int) - run.generate(prompts, seeds, 4, 16)["images"]).max() <= 1
    np.testing.assert_allclose(served.score(prompts, small), run.score(prompts, small),
                               atol=1e-4)
    for source in (served, run):
        with pytest.raises(sources.SourceError, match="names no product"):
            source.generate(["qqqq zzzz"], [0])
