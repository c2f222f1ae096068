"""Start-up benchmark: how fast `vur serve` answers, and what it loads to get there.

    .venv/bin/python bench/startup.py                 # (a) and (b)
    .venv/bin/python bench/startup.py --fresh-install # and (c): a fresh copy, `make run`

(a) Time from starting `vur serve` (installed, a fresh data dir per run, migrations
    applied beforehand) until GET /health answers 200; median of --runs runs, beside
    two baselines measured in the same run: `python -c "import fastapi, uvicorn"` and a
    bare FastAPI app under uvicorn serving /health. Budget: < 3 s.
(b) Whether the API process loaded any heavy ML library at start-up: the modules that
    `create_app()` imports, and the shared objects mapped by a live server
    (/proc/<pid>/maps) and by its child processes. Budget: none.
(c) With --fresh-install: the working tree (or, with --from-git, a clone of HEAD) copied
    into a temporary directory, `make run` there with a fresh data dir and a free port,
    timed until /health answers. Budget: < 120 s.

Exits 1 if any figure misses its budget. The machine may be busy: figures are medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HEAVY = ("statsforecast", "pandas", "torch", "keras", "sklearn", "numba", "prophet", "shap", "lightgbm", "xgboost", "scipy", "statsmodels", "numpy", "polars", "openai", "pypdfium2", "docx")
# How each library shows up in /proc/<pid>/maps: its folder in site-packages, or a
# folder of shared libraries it brings along.
HEAVY_PATHS = {name: (f"/site-packages/{name}/", f"/site-packages/{name}.libs/") for name in HEAVY}
HEAVY_PATHS["sklearn"] = ("/site-packages/sklearn/", "/site-packages/scikit_learn.libs/")
HEAVY_PATHS["numba"] = ("/site-packages/numba/", "/site-packages/llvmlite/")
HEAVY_PATHS["torch"] = ("/site-packages/torch/", "/site-packages/torch.libs/", "/site-packages/nvidia/")

BUDGET_SERVE_S = 3.0
BUDGET_FRESH_INSTALL_S = 120.0
BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "healthy"}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VUR_") and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(VUR_LOG_LEVEL="WARNING", **extra)
    return env


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ends the process group started for `process` (it was started in a session of its own)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    else:
        try:  # the leader is gone; make sure nothing of its group is left
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU time that `pid` has used so far (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_until_healthy(command: list[str], *, env: dict[str, str], cwd: Path, port: int, log: Path, timeout: float,
                       while_up: Callable[[subprocess.Popen[bytes]], None] | None = None, cpu: list[float] | None = None) -> float:
    url = f"http://127.0.0.1:{port}/health"
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while not answers(url):
                if process.poll() is not None:
                    raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n{tail(log)}")
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"{' '.join(command)}: no answer from {url} within {timeout:.0f} s:\n{tail(log)}")
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
            if cpu is not None:
                cpu.append(cpu_seconds(process.pid))
            if while_up is not None:
                while_up(process)
            return elapsed
        finally:
            stop(process)


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} s  (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


# --- (a) ---------------------------------------------------------------------


def bench_serve(runs: int, work: Path) -> dict[str, list[float]]:
    vur, python = str(BIN / "vur"), str(BIN / "python")
    figures: dict[str, list[float]] = {"import": [], "bare": [], "upgrade": [], "serve": [], "bare_cpu": [], "serve_cpu": []}
    bare_dir = work / "bare"
    bare_dir.mkdir()
    (bare_dir / "bare_app.py").write_text(BARE_APP)
    for run in range(runs):
        # Interleaved, so that a busy moment of the machine hits all three alike.
        figures["import"].append(timed([python, "-c", "import fastapi, uvicorn"], clean_env(), work))
        port = free_port()
        figures["bare"].append(
            time_until_healthy(
                [python, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                env=clean_env(), cwd=bare_dir, port=port, log=work / f"bare-{run}.log", timeout=60, cpu=figures["bare_cpu"],
            )
        )
        data_dir = work / f"data-{run}"
        port = free_port()
        env = clean_env(VUR_DATA_DIR=str(data_dir), VUR_PORT=str(port), VUR_HOST="127.0.0.1")
        figures["upgrade"].append(timed([vur, "db", "upgrade"], env, work))
        figures["serve"].append(
            time_until_healthy([vur, "serve"], env=env, cwd=work, port=port, log=work / f"serve-{run}.log", timeout=60, cpu=figures["serve_cpu"])
        )
    return figures


def bench_make_run_installed(runs: int, work: Path) -> list[float] | None:
    """`make run` again in this checkout when its install stamp is up to date (else None)."""
    if not (ROOT / "Makefile").exists() or shutil.which("make") is None:
        return None
    up_to_date = subprocess.run(["make", "-q", ".venv/.installed-run"], cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if up_to_date.returncode != 0:
        return None
    times = []
    for run in range(runs):
        port = free_port()
        env = clean_env(VUR_DATA_DIR=str(work / f"make-data-{run}"), VUR_PORT=str(port), VUR_HOST="127.0.0.1")
        times.append(time_until_healthy(["make", "run"], env=env, cwd=ROOT, port=port, log=work / f"make-run-{run}.log", timeout=120))
    return times


# --- (b) ---------------------------------------------------------------------


def modules_at_create_app(work: Path) -> list[str]:
    code = (
        "import sys, json, vur.app; vur.app.create_app(); "
        f"heavy = set({list(HEAVY)!r}); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))"
    )
    env = clean_env(VUR_DATA_DIR=str(work / "modules-data"))
    out = subprocess.run([str(BIN / "python"), "-c", code], env=env, cwd=work, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *children(kid)]
    return found


def heavy_objects(pid: int) -> tuple[set[str], int]:
    """The heavy libraries whose files `pid` has mapped, and its resident memory in KiB."""
    libraries: set[str] = set()
    maps = Path(f"/proc/{pid}/maps").read_text()
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[5] if len(line.split(maxsplit=5)) == 6 else ""
        for name, markers in HEAVY_PATHS.items():
            if any(marker in path for marker in markers):
                libraries.add(name)
    rss = next((int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:")), 0)
    return libraries, rss


def live_server_maps(work: Path) -> dict[str, object]:
    port = free_port()
    env = clean_env(VUR_DATA_DIR=str(work / "maps-data"), VUR_PORT=str(port), VUR_HOST="127.0.0.1")
    subprocess.run([str(BIN / "vur"), "db", "upgrade"], env=env, cwd=work, check=True)
    report: dict[str, object] = {}

    def inspect(process: subprocess.Popen[bytes]) -> None:
        time.sleep(1.0)  # let the lifespan finish starting the in-process job runner
        libraries, rss = heavy_objects(process.pid)
        report["pid"], report["api"], report["rss_kib"] = process.pid, sorted(libraries), rss
        kids: dict[int, list[str]] = {}
        for kid in children(process.pid):
            try:
                kids[kid] = sorted(heavy_objects(kid)[0])
            except OSError:
                continue
        report["children"] = kids

    time_until_healthy([str(BIN / "vur"), "serve"], env=env, cwd=work, port=port, log=work / "maps-serve.log", timeout=60, while_up=inspect)
    return report


# --- (c) ---------------------------------------------------------------------


def fresh_install(work: Path, from_git: bool, cold_cache: bool) -> float:
    checkout = work / "checkout"
    if from_git:
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(checkout)], check=True)
    else:
        ignore = shutil.ignore_patterns(".venv", "data", "__pycache__", ".pytest_cache", "*.pyc")
        shutil.copytree(ROOT, checkout, ignore=ignore, symlinks=True)
    port = free_port()
    extra = {"VUR_DATA_DIR": str(work / "fresh-data"), "VUR_PORT": str(port), "VUR_HOST": "127.0.0.1"}
    if cold_cache:
        extra["UV_CACHE_DIR"] = str(work / "uv-cache")
    env = clean_env(**extra)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p).resolve() != BIN.resolve())
    return time_until_healthy(["make", "run"], env=env, cwd=checkout, port=port, log=work / "fresh-make-run.log", timeout=900)


# --- report ------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fresh-install", action="store_true", help="also time `make run` in a fresh copy of the repository")
    parser.add_argument("--from-git", action="store_true", help="with --fresh-install: clone HEAD instead of copying the working tree")
    parser.add_argument("--cold-cache", action="store_true", help="with --fresh-install: an empty uv cache (downloads everything)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) and print its path")
    args = parser.parse_args()
    if not (BIN / "vur").exists():
        print(f"no vur next to {sys.executable}: run this with the project's .venv/bin/python (make bench)", file=sys.stderr)
        return 2

    failures: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="vur-bench-"))
    try:
        print(f"VUR start-up benchmark  ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start)")
        print()
        print("(a) start-up until GET /health answers 200")
        figures = bench_serve(args.runs, work)
        make_run = bench_make_run_installed(max(3, args.runs // 2 + 1), work)
        serve, bare, imports = (statistics.median(figures[k]) for k in ("serve", "bare", "import"))
        verdict = "PASS" if serve < BUDGET_SERVE_S else "FAIL"
        if verdict == "FAIL":
            failures.append("vur serve start-up")
        print(f"  baseline: python -c 'import fastapi, uvicorn'    {summary(figures['import'])}")
        print(f"  baseline: bare FastAPI app under uvicorn         {summary(figures['bare'])}")
        print(f"  vur db upgrade on an empty data dir (not timed)  {summary(figures['upgrade'])}")
        print(f"  vur serve until /health = 200                    {summary(figures['serve'])}   budget < {BUDGET_SERVE_S:.0f} s  {verdict}")
        print(f"  ratio vur serve / bare app                       {serve / bare:7.2f} x")
        print(f"  ratio vur serve / import fastapi+uvicorn         {serve / imports:7.2f} x")
        serve_cpu, bare_cpu = statistics.median(figures["serve_cpu"]), statistics.median(figures["bare_cpu"])
        print(f"  CPU time until healthy: vur serve / bare app     {serve_cpu:7.2f} s / {bare_cpu:.2f} s = {serve_cpu / bare_cpu:.2f} x   (less sensitive to a busy machine)")
        if make_run is not None:
            run_verdict = "PASS" if statistics.median(make_run) < BUDGET_SERVE_S else "FAIL"
            if run_verdict == "FAIL":
                failures.append("make run (already installed) start-up")
            print(f"  make run, already installed (migrate + serve)    {summary(make_run)}   budget < {BUDGET_SERVE_S:.0f} s  {run_verdict}")
        else:
            print("  make run, already installed                      skipped: .venv/.installed-run is missing or older than pyproject.toml")
        print(f"  load average after (a): {os.getloadavg()[0]:.2f}")
        print()

        print("(b) heavy ML libraries in the API process at start-up (" + ", ".join(HEAVY) + ")")
        imported = modules_at_create_app(work)
        live = live_server_maps(work)
        kids = live["children"]
        assert isinstance(kids, dict)
        kid_libraries = sorted({lib for libs in kids.values() for lib in libs})
        checks = [
            ("modules imported by create_app()", imported),
            (f"shared objects mapped by the live server (pid {live['pid']})", live["api"]),
            (f"mapped by its {len(kids)} child process(es)", kid_libraries),
        ]
        for label, found in checks:
            verdict = "PASS" if not found else "FAIL"
            if found:
                failures.append(label)
            shown = ", ".join(found[:8]) + (" …" if len(found) > 8 else "") if found else "none"
            print(f"  {label:<58} {shown:<12} {verdict}")
        print(f"  resident memory of the idle API process                    {int(live['rss_kib']) / 1024:.0f} MiB   (information)")
        print()

        if args.fresh_install:
            source = "a clone of HEAD" if args.from_git else "a copy of the working tree"
            cache = "an empty uv cache" if args.cold_cache else "the machine's uv cache"
            print(f"(c) fresh install: `make run` in {source}, with {cache}, until /health = 200")
            seconds = fresh_install(work, args.from_git, args.cold_cache)
            verdict = "PASS" if seconds < BUDGET_FRESH_INSTALL_S else "FAIL"
            if verdict == "FAIL":
                failures.append("fresh install")
            print(f"  make run from nothing                            {seconds:7.2f} s   budget < {BUDGET_FRESH_INSTALL_S:.0f} s  {verdict}")
            print()
    except Exception as exc:
        print(f"\nbenchmark error: {exc}", file=sys.stderr)
        failures.append("error")
    finally:
        if args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print("RESULT:", "PASS" if not failures else "FAIL (" + "; ".join(failures) + ")")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
