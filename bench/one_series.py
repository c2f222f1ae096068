"""Training time of every catalogue algorithm, with its defaults, on one 1,000-point
hourly series (the first M4 Hourly series that long, training then test part), through
the running platform.

    .venv/bin/python bench/one_series.py
    .venv/bin/python bench/one_series.py --algorithms lstm,gru

Each algorithm is trained by `POST /api/v1/models/train` with horizon 48, intervals at
80 and 95 % and one validation window (`holdout`), so the job fits twice: once for the
validation window and once on the whole history. "fit" is that last fit (the model
the platform keeps), "job" the whole job from start to finish, imports included:
each library is imported by the first job that needs it, as on a fresh server.
The baseline, in the same run: statsforecast's SeasonalNaive called directly.

Target (issue 5): each algorithm's fit under 30 s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from m4 import START, run_platform, running_platform  # noqa: E402
from m4_metrics import DEFAULT_DATA_DIR, HORIZON, load_hourly  # noqa: E402

from vur.forecasting.algorithms import CATALOGUE  # noqa: E402

POINTS = 1000
TARGET_SECONDS = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--algorithms", default=",".join(a.id for a in CATALOGUE.values() if a.listed))
    args = parser.parse_args()
    train, test = load_hourly(args.data_dir)
    uid = next(uid for uid, x in train.items() if len(x) + len(test[uid]) >= POINTS)
    values = np.concatenate([train[uid], test[uid]])[:POINTS]

    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    frame = pd.DataFrame({"unique_id": uid, "ds": pd.date_range(START, periods=POINTS, freq="h"), "y": values})
    started = time.perf_counter()
    StatsForecast(models=[SeasonalNaive(24)], freq="h", n_jobs=1).forecast(df=frame, h=HORIZON, level=[80, 95])
    baseline = time.perf_counter() - started

    rows = []
    with tempfile.TemporaryDirectory(prefix="vur-one-") as scratch, running_platform({uid: values}, scratch) as (client, dataset_id):
        for algorithm in args.algorithms.split(","):
            _, job, results = run_platform(client, dataset_id, algorithm, {}, levels=(80, 95), validation={"method": "holdout"})
            fit = results["fit_seconds"]
            rows.append((algorithm, fit, job))
            print(f"  {algorithm}: fit {fit:.2f} s, job {job:.2f} s", flush=True)

    print(f"\nOne {POINTS}-point hourly series (M4 {uid}, training part then test part), horizon {HORIZON}, defaults; baseline statsforecast SeasonalNaive direct: {baseline:.3f} s")
    print(f"{'algorithm':18} {'fit s':>8} {'job s':>8}  target fit < {TARGET_SECONDS:.0f} s")
    for algorithm, fit, job in rows:
        print(f"{algorithm:18} {fit:8.2f} {job:8.2f}  {'PASS' if fit < TARGET_SECONDS else 'FAIL'}")
    return 0 if all(fit < TARGET_SECONDS for _, fit, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
