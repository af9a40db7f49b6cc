import json
import os

import numpy as np
import pytest

from ads import ctr


def test_wilson_interval_known_values():
    assert ctr.wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    low, high = ctr.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert ctr.wilson_interval(0, 0) == (0.0, 1.0)


def test_two_proportion_test_and_holm():
    assert ctr.two_proportion_p_value(30, 1000, 30, 1000) == pytest.approx(1.0)
    # 2.0% vs 3.0% on 10,000 impressions each: z = 4.53, p = 5.9e-6
    assert ctr.two_proportion_p_value(200, 10000, 300, 10000) == pytest.approx(5.9e-6, rel=0.05)
    assert ctr.holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_thompson_sampling_concentrates_on_the_best_creative_as_data_grows():
    true = {"a": 0.020, "b": 0.025, "c": 0.030}
    log, simulation = ctr.simulate(true, periods=40, impressions_per_period=500, seed=0)
    shares = np.array(simulation["best_share"])
    assert shares[0] == pytest.approx(1 / 3, abs=0.02)  # no data yet: an even split
    assert shares[:5].mean() < 0.5 and shares[-5:].mean() > 0.85
    assert simulation["regret"][-1] < simulation["uniform_regret"][-1] / 2
    assert np.all(np.diff(simulation["regret"]) >= 0)
    assert len(log) == 120 and log["impressions"].sum() == 40 * 500
    report = ctr.analyse(log)
    assert max(report["next_allocation"], key=report["next_allocation"].get) == "c"


def test_bad_rows_are_rejected_one_by_one_with_reasons(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("creative,segment,impressions,clicks,date\n"
                    "红色连衣裙,young,1000,31,2026-11-01\n"
                    "hero,young,-5,0,2026-11-01\n"
                    "hero,young,100,120,2026-11-01\n"
                    "sale,,100,3,2026-11-01\n"
                    "sale,old,lots,3,2026-11-01\n"
                    "sale,old,2000,44,2026-11-02\n", encoding="utf-8")
    frame, rejected = ctr.read_log(str(path))
    assert list(frame["creative"]) == ["红色连衣裙", "sale"]
    assert [(r["line"], r["reason"]) for r in rejected] == [
        (3, "negative impressions: -5"), (4, "clicks (120) exceed impressions (100)"),
        (5, "empty segment"), (6, "impressions is not an integer: 'lots'")]
    report = ctr.main(["--log", str(path), "--out", str(tmp_path / "report")])
    assert report["rejected_rows"] == 4 and report["rows"] == 2
    for name in ("report.json", "report.md", "report.png"):
        assert os.path.exists(tmp_path / "report" / name)
    saved = json.load(open(tmp_path / "report" / "report.json", encoding="utf-8"))
    assert saved["creatives"][0]["creative"] == "红色连衣裙"
    assert "line 4: clicks (120) exceed impressions (100)" in open(
        tmp_path / "report" / "report.md", encoding="utf-8").read()


def test_unusable_logs_are_clear_errors(tmp_path, capsys):
    no_clicks = tmp_path / "a.csv"
    no_clicks.write_text("creative,segment,impressions\nx,y,10\n")
    with pytest.raises(ctr.LogError, match="missing column\\(s\\) clicks"):
        ctr.read_log(str(no_clicks))
    all_bad = tmp_path / "b.csv"
    all_bad.write_text("creative,segment,impressions,clicks\nx,y,10,11\n")
    with pytest.raises(ctr.LogError, match="no usable row .*line 2: clicks \\(11\\) exceed"):
        ctr.read_log(str(all_bad))
    with pytest.raises(SystemExit) as exit_info:
        ctr.main(["--log", str(tmp_path / "none.csv"), "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 1 and "impressions log not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ctr.main(["simulate", "--ctr", "0.02", "--out", str(tmp_path / "s")])
    assert "at least two CTRs" in capsys.readouterr().err


def test_simulate_cli_writes_a_log_that_analyses_the_same(tmp_path):
    report = ctr.main(["simulate", "--ctr", "hero=0.02,sale=0.03", "--periods", "5",
                       "--impressions", "1000", "--out", str(tmp_path)])
    again = ctr.main(["--log", str(tmp_path / "impressions.csv"), "--out", str(tmp_path / "re")])
    assert again["creatives"] == report["creatives"]
    assert report["simulation"]["best"] == "sale"
