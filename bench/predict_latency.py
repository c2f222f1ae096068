"""Prediction latency and throughput through HTTP, beside the bare library predict call.

    .venv/bin/python bench/predict_latency.py
    .venv/bin/python bench/predict_latency.py --seconds 60

A `vur serve` on a fresh data dir (SQLite, in-process jobs) trains two models on one
1,000-point M4 Hourly series: LightGBM on lag features (mlforecast) and seasonal
ARIMA (1,0,1)(0,1,1)24 (statsforecast), horizon 24, intervals at 80 %. Then, for each model:

- "new data": `POST /api/v1/models/{id}/predict` with 24 new observations of the series:
  the fitted model runs on the extended history, which is what a stream or any request
  with fresh values costs. For ARIMA that is statsforecast's `forward`. For LightGBM it is
  mlforecast's recursive forecast, which the platform takes step by step on arrays
  (`vur/forecasting/recursion.py`: the library's own transforms, date features and
  booster, the library's forecast bit for bit) instead of calling `predict(new_df=...)`,
  which spends nearly all of its 100 ms building a frame at every step.
- "served": the same with `{"horizon": 24}` alone: the fitted model forecasting from the
  end of its history. The platform answers from the forecast that model made when it was
  fitted (its state has not changed since), so no library runs.

Each mode is timed at concurrency 1 (p50, p99 of sequential requests) and 32 (requests
per second over a burst). Every request is a full one: authentication, validation, the
forecast, a row in the predictions table, the JSON answer.

The baseline, in the same process as this script and the same run: the library's own
predict call on the same fitted object, unpickled from the model's version folder
(`predict(24, level=[80])`; with new data, `predict(new_df=...)` / `forward(y=..., h=24)`):
what forecasting with the library alone costs. With new data neither asks the library for
intervals (the platform keeps the fitted forecast's widths), which would cost
statsforecast's `forward` a tenth more time that the platform does not spend.

Beside it, the platform's own forecast call in this process (the forecaster's
`forecast_columns` with the observations, or `predict` when served): what the platform
computes, without HTTP, authentication, validation or the recorded row. The requests'
p50 over its p50 is what the platform's serving adds to its own computation; it is
printed too (not judged: the target is over the library's call), so that a computation
faster than the library's call cannot hide the cost of serving it.

The machine is shared, and its speed drifts from one second to the next by more than the
5 ms judged (ARIMA's bare call has taken 15 ms over two seconds, 21 ms over the next two). So at
concurrency 1 requests, baseline calls and own calls take turns, one each, for `--seconds` and at least `--turns` times: all meet
the machine as it is at that moment, and "added p50" is the requests' p50 minus the
calls' p50 (beside it, a 95 % bootstrap interval of that difference, the turns resampled:
how far it could move between runs on the machine as it was). The requests go over one keep-alive connection from a client that sends a
prepared request and reads the answer with plain socket calls, a small fraction of a
millisecond of its own per request; it is the one judged. wrk (when on PATH) times the
same requests too, in slices of `--slice-seconds` each followed by as long of baseline
calls (wrk runs alone: turns any finer are not to be had); its figures are the medians
over the slices, and its added p50 the median of the slices' differences.

At concurrency 32, wrk (when on PATH) and httpx each run one burst.

Targets (issue 6): the platform adds at most 5 ms to p50 at concurrency 1 over the bare
predict call, and sustains at least 200 predictions/s at concurrency 32 for LightGBM
(served; with new data each request runs the recursive forecast, whose CPU time bounds
the rate: the bench prints that ceiling beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import pickle
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from m4 import START, run_platform, running_platform  # noqa: E402
from m4_metrics import DEFAULT_DATA_DIR, load_hourly  # noqa: E402

HORIZON = 24
POINTS = 1000
MODELS = {
    "lightgbm": {"season_length": 24},
    "sarima": {"p": 1, "d": 0, "q": 1, "P": 0, "D": 1, "Q": 1, "season_length": 24},
}
TARGET_ADDED_MS = 5.0
TARGET_RPS = 200.0
CONCURRENCY = 32
# wrk's request: the POST, its JSON body (read from a file) and the bearer token.
WRK_SCRIPT = """
local file = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
"""


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


class Connection:
    """One keep-alive HTTP/1.1 connection that sends one prepared POST again and again and
    reads each answer with plain socket calls: a client that costs a request far less of
    its own than httpx does, and leaves the Python process free to time the baseline."""

    def __init__(self, base_url: str, path: str, token: str, body: dict) -> None:
        url = httpx.URL(base_url)
        payload = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        self.request = head.encode() + payload
        self.socket = socket.create_connection((url.host, url.port))
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.received = b""

    def post(self) -> None:
        """Send the request and read its answer; anything but a 200 is an error."""
        self.socket.sendall(self.request)
        head = self._read_until(b"\r\n\r\n")
        length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
        body = self._read(int(length.group(1)) if length else 0)
        if not head.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"{head.splitlines()[0].decode()}: {body[:300].decode(errors='replace')}")

    def close(self) -> None:
        self.socket.close()

    def _read_until(self, end: bytes) -> bytes:
        while (at := self.received.find(end)) < 0:
            self._receive()
        head, self.received = self.received[: at + len(end)], self.received[at + len(end) :]
        return head

    def _read(self, size: int) -> bytes:
        while len(self.received) < size:
            self._receive()
        body, self.received = self.received[:size], self.received[size:]
        return body

    def _receive(self) -> None:
        if not (chunk := self.socket.recv(65536)):
            raise ConnectionError("the server closed the connection")
        self.received += chunk


@dataclass
class Turns:
    """Requests, baseline calls and the platform's own calls timed in turns:
    milliseconds of each."""

    requests: list[float]
    calls: list[float]
    own: list[float]

    def added(self, over: str = "calls") -> float:
        """The requests' p50 over that of the baseline `calls` (or of the `own` calls)."""
        return statistics.median(self.requests) - statistics.median(getattr(self, over))

    def added_interval(self, over: str = "calls", resamples: int = 2000) -> tuple[float, float]:
        """A 95 % bootstrap interval of `added` (turns resampled whole): how far the
        figure could move from run to run on a machine as noisy as this one was."""
        requests, calls = np.asarray(self.requests), np.asarray(getattr(self, over))
        picks = np.random.default_rng(0).integers(0, len(requests), size=(resamples, len(requests)))
        estimates = np.median(requests[picks], axis=1) - np.median(calls[picks], axis=1)
        low, high = np.percentile(estimates, [2.5, 97.5])
        return float(low), float(high)


def in_turns(request: Callable[[], None], bare: Callable[[], object], own: Callable[[], object], seconds: float, least: int = 30) -> Turns:
    """A request, a baseline call and an own call, again and again for `seconds` (at least `least` times)."""
    turns = Turns([], [], [])
    ends = time.perf_counter() + seconds
    while len(turns.requests) < least or time.perf_counter() < ends:
        started = time.perf_counter()
        request()
        answered = time.perf_counter()
        bare()
        called = time.perf_counter()
        own()
        turns.requests.append((answered - started) * 1000)
        turns.calls.append((called - answered) * 1000)
        turns.own.append((time.perf_counter() - called) * 1000)
    return turns


def calls_for(call: Callable[[], object], seconds: float, least: int = 3) -> list[float]:
    """Milliseconds per call of `call`, called again and again for `seconds` (at least `least` times)."""
    times: list[float] = []
    ends = time.perf_counter() + seconds
    while len(times) < least or time.perf_counter() < ends:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


@dataclass
class Slices:
    """wrk's slices of requests, each with the baseline calls timed right after it: the
    slices' p50 and p99 and the calls' p50, milliseconds."""

    p50: list[float]
    p99: list[float]
    bare_p50: list[float]

    def added(self) -> list[float]:
        return [http - bare for http, bare in zip(self.p50, self.bare_p50, strict=True)]


def in_slices(run_slice: Callable[[], WrkRun], bare: Callable[[], object], slices: int, seconds: float) -> Slices:
    measured = Slices([], [], [])
    for _ in range(slices):
        run = run_slice()
        measured.p50.append(run.p50_ms)
        measured.p99.append(run.p99_ms)
        measured.bare_p50.append(statistics.median(calls_for(bare, seconds)))
    return measured


def fresh_token(client: httpx.Client) -> str:
    """The client's access token, renewed when it has less than a minute left: wrk and
    `Connection` send it as it is, and tokens last 15 minutes, less than a run."""
    auth = client.auth
    payload = auth.token.split(".")[1]  # type: ignore[attr-defined]
    if json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"] - time.time() < 60:
        auth.token = auth.login()  # type: ignore[attr-defined]
    return auth.token  # type: ignore[attr-defined]


async def burst(base_url: str, token: str, path: str, body: dict, count: int, concurrency: int) -> float:
    """Requests per second for `count` requests with `concurrency` in flight."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=120) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                response = await client.post(path, json=body)
                response.raise_for_status()

        await asyncio.gather(*(one() for _ in range(concurrency)))  # warm the connections
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)


@dataclass
class WrkRun:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def wrk_run(base_url: str, token: str, path: str, body: dict, seconds: float, concurrency: int, scratch: str) -> WrkRun:
    """wrk (one thread, `concurrency` connections) over `seconds`: requests per second and
    latency percentiles; any answer but a 2xx fails the run."""
    script, body_file = Path(scratch, "post.lua"), Path(scratch, "body.json")
    script.write_text(WRK_SCRIPT)
    body_file.write_text(json.dumps(body))
    env = {**os.environ, "WRK_BODY_FILE": str(body_file), "WRK_TOKEN": token}
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--latency", "--timeout", "120s", "-s", str(script), f"{base_url}{path}"]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    if failures := re.search(r"Non-2xx or 3xx responses: \d+|Socket errors: .*", output):
        raise RuntimeError(f"wrk saw failed requests ({failures.group(0)}):\n{output}")

    def percentile_ms(q: int) -> float:
        value, unit = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\b", output, re.MULTILINE).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return WrkRun(float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), percentile_ms(50), percentile_ms(99))  # type: ignore[union-attr]


def forecaster_of(scratch: str, model_id: str) -> object:
    path = next(Path(scratch).rglob(f"{model_id.replace('-', '')}/versions/*/forecaster.pkl"))
    with path.open("rb") as handle:
        return pickle.load(handle)


@dataclass
class Row:
    algorithm: str
    mode: str
    turns: Turns
    slices: Slices | None  # wrk's, when it is on PATH
    rps: dict[str, float]  # at concurrency 32, by generator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seconds", type=float, default=20, help="requests and baseline calls in turns, per model and mode")
    parser.add_argument(
        "--turns", type=int, default=1000, help="at least this many turns, however long they take (over 1,000, LightGBM's added p50 had a 95 %% interval 3.3 ms wide; over 300 it moved by 5.5 ms between two runs)"
    )
    parser.add_argument("--slices", type=int, default=5, help="wrk's slices per model and mode, each followed by baseline calls")
    parser.add_argument("--slice-seconds", type=int, default=2, help="length of a wrk slice, and of the baseline calls after it (whole seconds: wrk's unit)")
    parser.add_argument("--workers", type=int, default=1, help="API processes of the server (vur serve --workers)")
    parser.add_argument("--wrk-seconds", type=float, default=5, help="length of each wrk burst at 32")
    parser.add_argument("--burst", type=int, default=300, help="requests of each httpx burst at 32 (a fifth with new data)")
    args = parser.parse_args()
    with_wrk = shutil.which("wrk") is not None
    burst_generators = ["wrk", "httpx"] if with_wrk else ["httpx"]

    import pandas as pd

    train, test = load_hourly(args.data_dir)
    uid = next(u for u in train if len(train[u]) + len(test[u]) >= POINTS)
    values = np.concatenate([train[uid], test[uid]])[:POINTS]
    history, newer = values[: POINTS - HORIZON], values[POINTS - HORIZON :]
    stamps = pd.date_range(START, periods=POINTS, freq="h")
    observations = [{"series_id": uid, "timestamp": t.isoformat(), "value": float(v)} for t, v in zip(stamps[POINTS - HORIZON :], newer, strict=True)]
    new_df = pd.DataFrame({"unique_id": uid, "ds": stamps, "y": values})
    # The observations as the prediction service hands them to the forecaster (the series is not rescaled: no preprocessing).
    observed = {"unique_id": np.full(HORIZON, uid, dtype=object), "ds": stamps[POINTS - HORIZON :].to_numpy(), "y": newer}
    print(f"Series {uid}: {len(history)} points to train on, then {HORIZON} newer observations; {args.workers} API process(es)")
    print(f"Concurrency 1: requests and baseline calls in turns for {args.seconds:.0f} s (at least {args.turns} turns) per model and mode" + (f"; wrk in {args.slices} slices of {args.slice_seconds} s" if with_wrk else " (wrk not on PATH)"))
    print(f"Concurrency {CONCURRENCY}: {' and '.join(burst_generators)} (the rate is judged by {burst_generators[0]})", flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as scratch, running_platform({uid: history}, scratch, args.workers) as (client, dataset_id):
        base_url = str(client.base_url)
        for algorithm, params in MODELS.items():
            _, seconds, results = run_platform(client, dataset_id, algorithm, params, levels=(80,), validation={"method": "holdout"}, horizon=HORIZON)
            print(f"  trained {algorithm} in {seconds:.1f} s", flush=True)
            model_id = results["model_id"]
            fitted = forecaster_of(scratch, model_id)
            if algorithm == "lightgbm":
                bare_served = lambda: fitted.fitted.predict(HORIZON, level=[80])  # noqa: E731
                bare_new = lambda: fitted.fitted.predict(HORIZON, new_df=new_df)  # noqa: E731
            else:
                model = fitted.models[uid]
                bare_served = lambda: model.predict(h=HORIZON, level=[80])  # noqa: E731
                bare_new = lambda: model.forward(y=values, h=HORIZON)  # noqa: E731
            own_served = lambda: fitted.predict(HORIZON, [80])  # noqa: E731
            own_new = lambda: fitted.forecast_columns(HORIZON, [80], observed)  # noqa: E731
            path = f"/api/v1/models/{model_id}/predict"
            # New data first: its observations are the actual values of the span the served
            # forecasts cover, so after thousands of those its first requests would score
            # them all (a once-only cost, not the steady state measured here).
            for mode, body, bare, own, count in (
                ("new data", {"horizon": HORIZON, "observations": observations}, bare_new, own_new, max(64, args.burst // 5)),
                ("served", {"horizon": HORIZON}, bare_served, own_served, args.burst),
            ):
                connection = Connection(base_url, path, fresh_token(client), body)
                in_turns(connection.post, bare, own, 0, least=3)  # warm up: the first request of a version loads its model
                turns = in_turns(connection.post, bare, own, args.seconds, least=args.turns)
                connection.close()
                slices = None
                if with_wrk:
                    slices = in_slices(lambda body=body: wrk_run(base_url, fresh_token(client), path, body, args.slice_seconds, 1, scratch), bare, args.slices, args.slice_seconds)
                rps = {
                    generator: asyncio.run(burst(base_url, fresh_token(client), path, body, count=count, concurrency=CONCURRENCY))
                    if generator == "httpx"
                    else wrk_run(base_url, fresh_token(client), path, body, args.wrk_seconds, CONCURRENCY, scratch).requests_per_second
                    for generator in burst_generators
                }
                rows.append(Row(algorithm, mode, turns, slices, rps))
                print(f"  measured {algorithm}/{mode}", flush=True)

    print()
    wrk_header = f"{'wrk p50':>10}{'wrk p99':>10}{'wrk added':>11}" if with_wrk else ""
    rps_header = "".join(f"{f'req/s {g}':>13}" for g in burst_generators)
    print(f"{'model':<10}{'mode':<10}{'requests':>9}{'bare p50':>10}{'bare p99':>10}{'own p50':>9}{'p50':>9}{'p99':>9}{'added p50':>11}{'over own':>10}{wrk_header}{rps_header}   (ms; req/s at concurrency {CONCURRENCY})")
    for row in rows:
        turns = row.turns
        cells = f"{len(turns.requests):>9}{statistics.median(turns.calls):>10.2f}{percentile(turns.calls, 99):>10.2f}{statistics.median(turns.own):>9.2f}"
        cells += f"{statistics.median(turns.requests):>9.2f}{percentile(turns.requests, 99):>9.2f}{turns.added():>+11.2f}{turns.added('own'):>+10.2f}"
        if row.slices is not None:
            cells += f"{statistics.median(row.slices.p50):>10.2f}{statistics.median(row.slices.p99):>10.2f}{statistics.median(row.slices.added()):>+11.2f}"
        print(f"{row.algorithm:<10}{row.mode:<10}{cells}" + "".join(f"{row.rps[g]:>13.1f}" for g in burst_generators))
    print("(p50, p99, added p50: requests in turns with the baseline calls and the own calls, one each; over own: the requests' p50 over the own calls'; wrk: medians over its slices)")
    if with_wrk:
        print()
        for row in rows:
            print(f"{row.algorithm}/{row.mode}, wrk's added p50 by slice: {' '.join(f'{added:+.2f}' for added in row.slices.added())}")  # type: ignore[union-attr]
    print()
    cores = os.cpu_count() or 1
    for row in rows:
        added = row.turns.added()
        verdict = "PASS" if added <= TARGET_ADDED_MS else "MISS"
        low, high = row.turns.added_interval()
        print(f"{verdict}  {row.algorithm}/{row.mode}: adds {added:+.2f} ms to the bare p50 (95 % bootstrap interval {low:+.2f} to {high:+.2f}; target <= {TARGET_ADDED_MS} ms)")
        low, high = row.turns.added_interval("own")
        print(f"      {row.algorithm}/{row.mode}: serving adds {row.turns.added('own'):+.2f} ms to the platform's own forecast call ({low:+.2f} to {high:+.2f})")
        if row.algorithm == "lightgbm":
            throughput = row.rps[burst_generators[0]]
            if row.mode == "served":
                verdict = "PASS" if throughput >= TARGET_RPS else "MISS"
                print(f"{verdict}  {row.algorithm}/{row.mode}: {throughput:.0f} predictions/s at concurrency {CONCURRENCY} with {burst_generators[0]} (target >= {TARGET_RPS:.0f})")
            else:
                # Each such request runs the recursive forecast: its CPU time bounds the rate.
                ceiling = cores * 1000 / statistics.median(row.turns.own)
                print(f"      {row.algorithm}/{row.mode}: {throughput:.0f} predictions/s at concurrency {CONCURRENCY}, {throughput / ceiling:.0%} of the {ceiling:.0f}/s the forecast call alone allows on {cores} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
