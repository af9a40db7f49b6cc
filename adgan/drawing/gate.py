"""Calibrate the discriminator gate of a finished run: `adgan-calibrate --run RUN [--gamma G]`.

Writes RUN/final/calibration.json (`runs.calibrate_run`; `train.py` does this at the
end of every run). The gate itself, DRS and the calibration fit are in sampling.py.
"""

import argparse

from adgan import runs
from adgan.drawing.sampling import DEFAULT_GAMMA, describe
from adgan.helpers import run_command


def main(argv=None):
    """CLI: (re)calibrate a finished run; returns the calibration."""
    parser = argparse.ArgumentParser(description="Calibrate the discriminator gate of a run.")
    parser.add_argument("--run", required=True, help="training run folder")
    parser.add_argument("--gamma", type=float, default=DEFAULT_GAMMA,
                        help="DRS target acceptance rate per candidate, in (0, 1]")
    args = parser.parse_args(argv)
    if not 0.0 < args.gamma <= 1.0:
        parser.error(f"--gamma must be in (0, 1], got {args.gamma}")
    try:
        calibration = runs.calibrate_run(runs.load_model(args.run), args.run, args.gamma)
    except (OSError, ValueError) as error:  # RunError is a ValueError
        parser.exit(1, f"gate: {error}\n")
    print(f"gate: {describe(calibration)}; wrote {runs.path(args.run, 'calibration')}")
    return calibration


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "calibrate")


if __name__ == "__main__":
    console_main()
