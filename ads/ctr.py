"""Ad-effect analysis: CTR with confidence, A/B significance, and Thompson-sampling allocation.

    python -m ads.ctr --log impressions.csv --out reports/ctr          # analyse a log
    python -m ads.ctr simulate --ctr 0.020,0.025,0.035 --out reports/sim   # a known-truth check

The log is a CSV with columns `creative`, `segment`, `impressions`, `clicks`
(optionally `date`), one row per creative x segment (x date). Rows with a bad
value (negative or non-integer counts, clicks > impressions, an empty id) are
rejected one by one with their line number and reason, and counted in the report;
a file without the required columns is refused whole.

The report (report.json, report.md, report.png) has CTR per creative and per
creative x segment with Wilson 95% intervals, pairwise two-proportion z-tests
(Holm-adjusted p-values) and the next period's traffic share per creative from
Thompson sampling (the probability that each creative's CTR is the highest under
its Beta(1 + clicks, 1 + misses) posterior), overall and per segment.
"""

import argparse
import math
import os
import re
import sys

import numpy as np
import pandas as pd

from adgan.helpers import atomic_path, run_command, save_png, write_json, write_text
from ads import charts

REQUIRED_COLUMNS = ("creative", "segment", "impressions", "clicks")
Z_95 = 1.959963984540054


class LogError(ValueError):
    """An impressions log that cannot be read at all (missing file or columns, no good row)."""


# ----------------------------------------------------------------------------- statistics

def wilson_interval(clicks, impressions, z=Z_95):
    """Wilson score interval (low, high) of a click rate; (0, 1) without impressions."""
    if impressions <= 0:
        return 0.0, 1.0
    rate = clicks / impressions
    denominator = 1 + z * z / impressions
    centre = (rate + z * z / (2 * impressions)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / impressions
                         + z * z / (4 * impressions ** 2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p_value(clicks_a, impressions_a, clicks_b, impressions_b):
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when undefined)."""
    pooled = (clicks_a + clicks_b) / (impressions_a + impressions_b)
    variance = pooled * (1 - pooled) * (1 / impressions_a + 1 / impressions_b)
    if variance <= 0:
        return 1.0
    z = (clicks_a / impressions_a - clicks_b / impressions_b) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def holm_adjust(p_values):
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    order = np.argsort(p_values)
    adjusted = np.empty(len(p_values))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def thompson_shares(clicks, impressions, draws=20000, seed=0):
    """Probability that each arm has the highest CTR under Beta(1 + clicks, 1 + misses)
    posteriors (Monte Carlo, seeded): the Thompson-sampling share of the next traffic."""
    clicks, impressions = np.asarray(clicks, float), np.asarray(impressions, float)
    rng = np.random.default_rng(seed)
    samples = rng.beta(1 + clicks, 1 + impressions - clicks, size=(draws, len(clicks)))
    return np.bincount(samples.argmax(1), minlength=len(clicks)) / draws


# ----------------------------------------------------------------------------- the log

def read_log(path, name=None):
    """Read an impressions CSV; returns (good rows DataFrame, rejected [{line, reason, row}]).

    `path` is a file path or a file object (then `name` names it in messages).
    Raises `LogError` naming the file and the problem when it is missing, lacks a
    required column, or has no good row.
    """
    name = name or path
    if isinstance(path, str) and not os.path.exists(path):
        raise LogError(f"{path}: impressions log not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as error:  # UnicodeDecodeError included
        raise LogError(f"{name}: cannot parse CSV ({str(error).splitlines()[0][:200]})") from None
    except OSError as error:  # a folder, no permission
        raise LogError(f"{name}: cannot read the log ({error.strerror})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise LogError(f"{name}: missing column(s) {', '.join(missing)}; "
                       f"found {', '.join(map(str, frame.columns)) or 'none'}")
    good, rejected = [], []
    for index, row in frame.iterrows():
        reason = row_problem(row)
        line = index + 2  # the header is line 1
        if reason:
            rejected.append({"line": line, "reason": reason,
                             "row": {k: row[k] for k in frame.columns}})
        else:
            good.append({"creative": row["creative"].strip(), "segment": row["segment"].strip(),
                         "impressions": int(row["impressions"]), "clicks": int(row["clicks"]),
                         "date": row.get("date", "").strip(), "line": line})
    if not good:
        raise LogError(f"{name}: no usable row ({len(frame)} rows, {len(rejected)} rejected"
                       + (f", e.g. line {rejected[0]['line']}: {rejected[0]['reason']}"
                          if rejected else "") + ")")
    return pd.DataFrame(good), rejected


def row_problem(row):
    """Why a log row cannot be used, or None."""
    for column in ("creative", "segment"):
        if not row[column].strip():
            return f"empty {column}"
    counts = {}
    for column in ("impressions", "clicks"):
        text = row[column].strip()
        if not re.fullmatch(r"-?[0-9]+", text):  # ASCII digits: "²" is a digit to isdigit()
            return f"{column} is not an integer: {text[:40]!r}"
        if len(text.lstrip("-")) > 18:
            return f"{column} is too large: {len(text)} digits"
        counts[column] = int(text)
        if counts[column] < 0:
            return f"negative {column}: {counts[column]}"
    if counts["clicks"] > counts["impressions"]:
        return f"clicks ({counts['clicks']}) exceed impressions ({counts['impressions']})"
    return None


# ----------------------------------------------------------------------------- the report

def rate_rows(frame, keys):
    """CTR with a Wilson interval per group of `keys` (list of dicts, in first-seen order)."""
    grouped = frame.groupby(list(keys), sort=False)[["impressions", "clicks"]].sum()
    rows = []
    for key, (impressions, clicks) in grouped.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        low, high = wilson_interval(clicks, impressions)
        rows.append({**dict(zip(keys, key)), "impressions": int(impressions),
                     "clicks": int(clicks), "ctr": clicks / impressions if impressions else 0.0,
                     "ctr_low": low, "ctr_high": high})
    return rows


def pairwise_tests(creatives):
    """Every pair of creatives: CTR difference, raw and Holm-adjusted p-values."""
    pairs = []
    for i, a in enumerate(creatives):
        for b in creatives[i + 1:]:
            if a["impressions"] and b["impressions"]:
                pairs.append({"a": a["creative"], "b": b["creative"],
                              "difference": a["ctr"] - b["ctr"],
                              "p_value": two_proportion_p_value(a["clicks"], a["impressions"],
                                                                b["clicks"], b["impressions"])})
    for pair, adjusted in zip(pairs, holm_adjust([p["p_value"] for p in pairs])):
        pair["p_holm"] = adjusted
        pair["significant_5pct"] = adjusted < 0.05
    return pairs


def analyse(frame, rejected=(), seed=0):
    """The report dict of good log rows (see the module docstring)."""
    creatives = rate_rows(frame, ["creative"])
    names = [c["creative"] for c in creatives]
    shares = thompson_shares([c["clicks"] for c in creatives],
                             [c["impressions"] for c in creatives], seed=seed)
    by_segment = {}
    for segment, part in frame.groupby("segment", sort=False):
        totals = part.groupby("creative")[["impressions", "clicks"]].sum().reindex(names,
                                                                                   fill_value=0)
        segment_shares = thompson_shares(totals["clicks"], totals["impressions"], seed=seed)
        by_segment[segment] = dict(zip(names, segment_shares.tolist()))
    return {"rows": int(len(frame)), "rejected_rows": len(rejected), "rejected": list(rejected),
            "impressions": int(frame["impressions"].sum()), "clicks": int(frame["clicks"].sum()),
            "creatives": creatives, "segments": rate_rows(frame, ["creative", "segment"]),
            "pairwise": pairwise_tests(creatives),
            "next_allocation": dict(zip(names, shares.tolist())),
            "next_allocation_by_segment": by_segment}


def format_markdown(report, title="CTR report"):
    """Markdown text of a report: tables of CTRs, tests and the allocation."""
    def pct(value):
        return f"{100 * value:.2f}%"

    lines = [f"# {title}", "",
             f"{report['rows']} log rows used, {report['rejected_rows']} rejected; "
             f"{report['impressions']:,} impressions, {report['clicks']:,} clicks. "
             "CTR intervals are Wilson 95%; p-values are two-sided two-proportion z-tests, "
             "Holm-adjusted; the allocation is Thompson sampling's probability of being best.",
             "", "| creative | impressions | clicks | CTR | 95% interval | next share |",
             "|---|---|---|---|---|---|"]
    for row in report["creatives"]:
        lines.append(f"| {row['creative']} | {row['impressions']:,} | {row['clicks']:,} | "
                     f"{pct(row['ctr'])} | {pct(row['ctr_low'])} – {pct(row['ctr_high'])} | "
                     f"{pct(report['next_allocation'][row['creative']])} |")
    lines += ["", "## Per segment", "",
              "| creative | segment | impressions | clicks | CTR | 95% interval | next share |",
              "|---|---|---|---|---|---|---|"]
    for row in report["segments"]:
        share = report["next_allocation_by_segment"][row["segment"]][row["creative"]]
        lines.append(f"| {row['creative']} | {row['segment']} | {row['impressions']:,} | "
                     f"{row['clicks']:,} | {pct(row['ctr'])} | {pct(row['ctr_low'])} – "
                     f"{pct(row['ctr_high'])} | {pct(share)} |")
    lines += ["", "## A/B tests", "", "| A | B | CTR A − B | p | p (Holm) | significant |",
              "|---|---|---|---|---|---|"]
    for pair in report["pairwise"]:
        lines.append(f"| {pair['a']} | {pair['b']} | {100 * pair['difference']:+.2f} pt | "
                     f"{pair['p_value']:.3g} | {pair['p_holm']:.3g} | "
                     f"{'yes' if pair['significant_5pct'] else 'no'} |")
    if report["rejected"]:
        lines += ["", "## Rejected rows", ""]
        lines += [f"* line {r['line']}: {r['reason']}" for r in report["rejected"]]
    if "simulation" in report:
        sim = report["simulation"]
        lines += ["", "## Simulation", "",
                  f"True CTRs {', '.join(f'{k} {pct(v)}' for k, v in sim['true_ctr'].items())}; "
                  f"{sim['periods']} periods of {sim['impressions_per_period']:,} impressions. "
                  f"Thompson sampling's share of the best creative: "
                  f"{pct(sim['best_share'][0])} in period 1, {pct(sim['best_share'][-1])} in the "
                  f"last. Regret (expected clicks lost against always showing the best): "
                  f"{sim['regret'][-1]:.1f}, against {sim['uniform_regret'][-1]:.1f} for an even "
                  "split."]
    return "\n".join(lines) + "\n"


def write_report(report, out_dir, title="CTR report"):
    """report.json, report.md and report.png in `out_dir`; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, f"report.{name}") for name in ("json", "md", "png")}
    write_json(report, paths["json"])
    write_text(format_markdown(report, title), paths["md"])
    save_png(charts.ctr_chart(report), paths["png"])
    return paths


# ----------------------------------------------------------------------------- simulation

def simulate(true_ctr, periods=20, impressions_per_period=5000, segment="all", seed=0):
    """Thompson sampling against known CTRs; returns (log DataFrame, simulation dict).

    Each period splits its impressions by the current Thompson shares, draws
    clicks from the true CTRs, and logs one row per creative. Regret counts the
    expected clicks lost against always showing the best creative.
    """
    names = list(true_ctr)
    truth = np.array([true_ctr[n] for n in names])
    rng = np.random.default_rng(seed)
    clicks, impressions = np.zeros(len(names)), np.zeros(len(names))
    rows, best_share, regret, uniform_regret = [], [], [], []
    lost = uniform_lost = 0.0
    for period in range(periods):
        shares = thompson_shares(clicks, impressions, seed=seed + period)
        shown = rng.multinomial(impressions_per_period, shares)
        got = rng.binomial(shown, truth)
        clicks += got
        impressions += shown
        lost += float(shown @ (truth.max() - truth))
        uniform_lost += impressions_per_period * float((truth.max() - truth).mean())
        best_share.append(float(shares[truth.argmax()]))
        regret.append(lost)
        uniform_regret.append(uniform_lost)
        rows += [{"creative": n, "segment": segment, "impressions": int(s), "clicks": int(c),
                  "date": f"period-{period + 1:03d}"} for n, s, c in zip(names, shown, got)]
    return pd.DataFrame(rows), {"true_ctr": dict(true_ctr), "periods": periods,
                                "impressions_per_period": impressions_per_period,
                                "best": names[int(truth.argmax())], "best_share": best_share,
                                "regret": regret, "uniform_regret": uniform_regret}


# ----------------------------------------------------------------------------- CLI

def parse_ctrs(text):
    """"0.02,0.03" or "a=0.02,b=0.03" -> {"creative-1": 0.02, ...} (argparse type)."""
    out = {}
    for i, part in enumerate(p for p in text.split(",") if p.strip()):
        name, _, value = part.rpartition("=")
        try:
            rate = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a CTR: {part!r}") from None
        if not 0.0 <= rate <= 1.0:
            raise argparse.ArgumentTypeError(f"a CTR must be in [0, 1], got {rate}")
        out[name.strip() or f"creative-{i + 1}"] = rate
    if len(out) < 2:
        raise argparse.ArgumentTypeError("give at least two CTRs, comma-separated")
    return out


def main(argv=None):
    """CLI: analyse a log, or `simulate`; returns the report dict."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["simulate"]:
        parser = argparse.ArgumentParser(prog="python -m ads.ctr simulate",
                                         description="Thompson sampling against known CTRs.")
        parser.add_argument("--ctr", type=parse_ctrs, required=True,
                            help="true CTRs, e.g. 0.02,0.025,0.035 or hero=0.02,sale=0.03")
        parser.add_argument("--periods", type=int, default=20)
        parser.add_argument("--impressions", type=int, default=5000, help="per period")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", default="reports/simulation")
        args = parser.parse_args(argv[1:])
        if args.periods < 1 or args.impressions < 1:
            parser.error("--periods and --impressions must be positive")
        log, simulation = simulate(args.ctr, args.periods, args.impressions, seed=args.seed)
        os.makedirs(args.out, exist_ok=True)
        log_path = os.path.join(args.out, "impressions.csv")
        with atomic_path(log_path) as tmp:
            log.to_csv(tmp, index=False)
        report = {**analyse(log, seed=args.seed), "simulation": simulation}
        paths = write_report(report, args.out, "CTR report (simulated)")
        print(f"ctr: simulated {log_path}; report {paths['md']}, chart {paths['png']}")
        return report
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True, help="impressions CSV")
    parser.add_argument("--out", default="reports/ctr", help="report folder")
    parser.add_argument("--seed", type=int, default=0, help="Thompson sampling's draws")
    args = parser.parse_args(argv)
    try:
        frame, rejected = read_log(args.log)
    except LogError as error:
        parser.exit(1, f"ctr: {error}\n")
    for row in rejected:
        print(f"ctr: {args.log} line {row['line']} rejected: {row['reason']}", file=sys.stderr)
    report = analyse(frame, rejected, seed=args.seed)
    paths = write_report(report, args.out)
    print(f"ctr: {len(frame)} rows used, {len(rejected)} rejected; report {paths['md']}, "
          f"chart {paths['png']}")
    return report


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "ctr")


if __name__ == "__main__":
    console_main()
