import json

import pytest

from adgan.drawing import calibrate
from adgan.drawing.calibrate import calibrate_run, load_calibration
from adgan.drawing.gate import describe
from adgan.runs.artifacts import load_model
from conftest import uncalibrated_copy
import generate

# they draw through the commands' main(): one load of each model file (conftest)
pytestmark = pytest.mark.usefixtures("shared_models")


def test_run_calibration_is_saved_and_reproducible(trained_run):
    saved = load_calibration(trained_run)
    assert {"slope", "intercept", "max_log_odds", "shift", "gamma", "auc_real_vs_fake",
            "fake_log_odds"} <= set(saved)
    again = calibrate_run(load_model(trained_run), trained_run)
    assert again["slope"] == pytest.approx(saved["slope"], rel=1e-4)
    assert describe(saved).startswith(f"calibrated on {saved['pairs']} train pairs")


def test_generate_without_calibration_asks_for_it(trained_run, tmp_path, capsys):
    run = uncalibrated_copy(trained_run, tmp_path / "run")
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--run", str(run), "--out", str(tmp_path / "g.png"), "dress"])
    assert exit_info.value.code == 1 and "adgan-calibrate --run" in capsys.readouterr().err
    generate.main(["--run", str(run), "--out", str(tmp_path / "g.png"), "--no-gate", "dress"])
    assert calibrate.main(["--run", str(run)])["pairs"] > 0
    assert json.load(open(run / "final" / "calibration.json"))["split"] == "train"


def test_gate_cli_errors_name_the_problem(trained_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        calibrate.main(["--run", str(tmp_path)])
    assert exit_info.value.code == 1 and "final/model.keras not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        calibrate.main(["--run", trained_run, "--gamma", "0"])
    assert exit_info.value.code == 2 and "--gamma must be in (0, 1]" in capsys.readouterr().err
