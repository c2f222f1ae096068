"""Ingest benchmark: a 1,000,000-row x 10-column CSV through the API, against Polars and
pandas reading the same file in this process.

    .venv/bin/python bench/datasets_ingest.py [--rows 1000000] [--keep]

Prints one table: upload (until the response), statistics, preview p50 over 50 pages,
the server's peak RSS, and the baselines (time, and peak RSS of a process that does
only that read), with the targets of issue 4:
the upload (parse, type detection, typed Parquet) within 1.5x of polars.read_csv, peak RSS under 3x the file size,
preview p50 under 50 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent


# M5-style item-store ids ("FOODS_3_090_CA_3"), the shape of a retail long-format file.
DEPARTMENTS = ["FOODS_1", "FOODS_2", "FOODS_3", "HOBBIES_1", "HOBBIES_2", "HOUSEHOLD_1", "HOUSEHOLD_2"]
STORES = ["CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3"]


def make_csv(path: Path, rows: int) -> None:
    """About 100 bytes a row, as the issue sizes it: 1,000,000 rows make about 94 MB."""
    rng = np.random.default_rng(7)
    series = 100
    per_series = rows // series
    hours = np.arange(per_series, dtype="int64") * 3_600_000_000
    start = np.datetime64("2020-01-01T00:00:00", "us").astype("int64")
    ids = [f"{DEPARTMENTS[i % len(DEPARTMENTS)]}_{i:03d}_{STORES[i % len(STORES)]}" for i in range(series)]
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(np.tile(start + hours, series)).cast(pl.Datetime("us")),
            "series_id": np.repeat(ids, per_series),
            "demand": rng.gamma(2.0, 50.0, per_series * series).round(3),
            "price": rng.normal(10, 2, per_series * series).round(2),
            "temperature": rng.normal(22, 6, per_series * series).round(2),
            "humidity": rng.uniform(0, 100, per_series * series).round(2),
            "promo": rng.integers(0, 2, per_series * series),
            "units": rng.integers(0, 500, per_series * series),
            "region": rng.choice(["California", "Texas", "Wisconsin", "Oregon"], per_series * series),
            "channel": rng.choice(["in_store", "online", "mobile_app"], per_series * series),
        }
    )
    frame.write_csv(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def baseline_peak_rss(statement: str, path: Path) -> int:
    """Peak RSS of a fresh Python process that runs `statement` on the file, and nothing else."""
    script = f"import sys\npath = sys.argv[1]\n{statement}\nprint(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')))"
    return int(subprocess.run([sys.executable, "-c", script, str(path)], check=True, capture_output=True, text=True).stdout) * 1024


def timed(func):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated CSV in /tmp for the next run")
    args = parser.parse_args()

    csv_path = Path(tempfile.gettempdir()) / f"vur-bench-{args.rows}.csv"
    if not csv_path.exists():
        print(f"generating {csv_path} ...", file=sys.stderr)
        make_csv(csv_path, args.rows)
    size = csv_path.stat().st_size

    import pandas as pd

    # Medians of three: one read on a shared machine says little.
    polars_s = statistics.median(timed(lambda: pl.read_csv(csv_path, try_parse_dates=True))[0] for _ in range(3))
    pandas_s = statistics.median(timed(lambda: pd.read_csv(csv_path).describe(include="all"))[0] for _ in range(3))
    polars_rss = baseline_peak_rss("import polars as pl\npl.read_csv(path, try_parse_dates=True)", csv_path)
    pandas_rss = baseline_peak_rss("import pandas as pd\npd.read_csv(path).describe(include='all')", csv_path)

    data_dir = Path(tempfile.mkdtemp(prefix="vur-bench-"))
    port = free_port()
    env = {**os.environ, "VUR_DATA_DIR": str(data_dir), "VUR_PORT": str(port), "VUR_LOG_LEVEL": "WARNING", "VUR_MAX_UPLOAD_BYTES": str(4 * size)}
    vur = [sys.executable, "-m", "vur.cli"]
    subprocess.run([*vur, "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([*vur, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=600) as client:
            token = client.post("/api/v1/auth/register", json={"email": "bench@example.com", "password": "bench-password", "name": "Bench"}).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            # Registration hashes a password with argon2 (64 MiB): reset the peak so that
            # it measures the upload, not the login before it.
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")
            rss_before = peak_rss_bytes(server.pid)
            uploads = []
            for attempt in range(3):
                with csv_path.open("rb") as handle:
                    seconds, response = timed(lambda h=handle, a=attempt: client.post("/api/v1/datasets/upload", headers=headers, files={"file": (f"bench{a}.csv", h, "text/csv")}))
                assert response.status_code == 201, response.text
                uploads.append(seconds)
            upload_s = statistics.median(uploads)
            upload_peak = peak_rss_bytes(server.pid)
            dataset_id = response.json()["dataset_id"]
            stats_s, stats = timed(lambda: client.get(f"/api/v1/datasets/{dataset_id}/statistics", headers=headers))
            assert stats.status_code == 200, stats.text
            preview_times = []
            for page in range(1, 51):
                seconds, page_response = timed(lambda p=page: client.get(f"/api/v1/datasets/{dataset_id}/preview", headers=headers, params={"page": p * 97, "limit": 100}))
                assert page_response.status_code == 200
                preview_times.append(seconds)
            peak = peak_rss_bytes(server.pid)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data_dir, ignore_errors=True)
        if not args.keep:
            csv_path.unlink(missing_ok=True)

    preview_p50 = statistics.median(preview_times)
    ingest = upload_s + stats_s
    rows = [
        ("file", f"{args.rows:,} rows x 10 columns, {size / 1e6:.1f} MB", ""),
        ("polars.read_csv (baseline): time, peak RSS", f"{polars_s:.2f} s, {polars_rss / 1e6:.0f} MB = {polars_rss / size:.2f}x", ""),
        ("pandas.read_csv + describe (baseline): same", f"{pandas_s:.2f} s, {pandas_rss / 1e6:.0f} MB = {pandas_rss / size:.2f}x", ""),
        ("VUR upload (until the response, median of 3)", f"{upload_s:.2f} s", ""),
        ("VUR statistics (first, uncached)", f"{stats_s:.2f} s", ""),
        ("VUR upload (parse + types + Parquet) / polars", f"{upload_s / polars_s:.2f}x", "PASS" if upload_s <= 1.5 * polars_s else "FAIL (target 1.5x)"),
        ("VUR upload + statistics / polars", f"{ingest / polars_s:.2f}x", "(information)"),
        ("VUR preview p50 (50 pages)", f"{preview_p50 * 1000:.1f} ms", "PASS" if preview_p50 < 0.05 else "FAIL (target 50 ms)"),
        ("server peak RSS: idle, uploads, whole run", f"{rss_before / 1e6:.0f} / {upload_peak / 1e6:.0f} / {peak / 1e6:.0f} MB", ""),
        ("server peak RSS / file size", f"{peak / size:.2f}x", "PASS" if peak < 3 * size else "FAIL (target 3x)"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, verdict in rows:
        print(f"{name:<{width}}  {value:<28} {verdict}")
    return 0 if all(not r[2].startswith("FAIL") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
