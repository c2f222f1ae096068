"""Forge benchmarks.

Extraction: a generated 200-page PDF through our extraction and segmentation, beside
pypdfium2's text extraction alone, in the same run. Prints pages per second (median of
the runs) for the library alone, our extraction (which adds normalisation and paragraph
recovery), and extraction plus segmentation into paragraphs and clauses, with each row's
time relative to the library's.

Generation: `generation.run` (what the forge.generate job runs: the OpenAI client, our
retries, quality checks, batching) against the tests' local provider server answering
every call after --latency seconds, at --concurrency calls in flight. The ideal is
concurrency / latency items per second; the target is at least 80% of it. Batches are
handed to a store that only counts them: the figure is about the provider pipeline.

Export: `exports.create_export` (what POST /api/v1/datasets/{id}/export runs within the
request) of --export-items approved items to chat JSONL in a migrated SQLite database,
beside the floor of the same work: one SELECT of the four text columns and json.dumps of
each record to a file. Prints seconds and items per second (median of the runs), and the
peak of Python allocations while exporting (tracemalloc, a separate run): the items are
streamed in batches, so it must not grow with the dataset.

    .venv/bin/python bench/forge.py [--part all|extraction|generation|export] [--pages 200] [--runs 5]
                                    [--items 320] [--latency 0.5] [--concurrency 16] [--export-items 100000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert, select  # noqa: E402

from tests.forge.instruction_data import instruction_dataset  # noqa: E402
from tests.forge.provider_server import ProviderServer, ok  # noqa: E402
from tests.forge.samples import make_pdf  # noqa: E402
from vur.core import migrations  # noqa: E402
from vur.core.db import Database, get_database  # noqa: E402
from vur.core.storage import LocalArtifactStore  # noqa: E402
from vur.datasets.models import Dataset  # noqa: E402
from vur.forge import (  # noqa: E402
    exports,  # noqa: E402
    generation,
    providers,
)
from vur.forge.extract import extract  # noqa: E402
from vur.forge.models import InstructionItem, Template  # noqa: E402
from vur.forge.segment import segment  # noqa: E402
from vur.forge.training_schemas import ExportRequest  # noqa: E402
from vur.identity.models import Workspace  # noqa: E402

SENTENCE = "O beneficiário poderá utilizar o cartão em qualquer estabelecimento credenciado da rede"


def pages(count: int) -> list[list[str]]:
    """Contract-like pages: numbered clauses of wrapped lines, about 3,000 characters each."""
    out = []
    for page in range(count):
        lines = []
        for clause in range(1, 6):
            lines.append(f"{page + 1}.{clause} {SENTENCE}, conforme a cláusula {clause} deste contrato,")
            lines += [f"{SENTENCE} e nas condições do anexo {n}." for n in range(6)]
            lines.append("Fim da cláusula.")
        out.append(lines)
    return out


def pdfium_alone(path: Path) -> int:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        characters = 0
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            characters += len(textpage.get_text_range())
            textpage.close()
            page.close()
        return characters
    finally:
        document.close()


def median_seconds(run: Callable[[], object], runs: int) -> float:
    run()  # warm-up: imports, file cache
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def bench_extraction(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.pdf"
        path.write_bytes(make_pdf(pages(args.pages)))
        text = extract(path, "pdf")
        counts = {kind: len(segment(text.text, kind, max_length=1000, overlap=100, page_starts=text.page_starts)) for kind in ("paragraph", "clause")}
        rows = [
            ("pypdfium2 text alone (baseline)", lambda: pdfium_alone(path)),
            ("vur extract", lambda: extract(path, "pdf")),
            ("vur extract + paragraph", lambda: segment((e := extract(path, "pdf")).text, "paragraph", max_length=1000, overlap=100, page_starts=e.page_starts)),
            ("vur extract + clause", lambda: segment((e := extract(path, "pdf")).text, "clause", max_length=1000, overlap=100, page_starts=e.page_starts)),
        ]
        print(f"{args.pages} pages, {path.stat().st_size / 1e6:.1f} MB, {len(text.text):,} characters; {counts['paragraph']:,} paragraph and {counts['clause']:,} clause segments")
        print(f"median of {args.runs} runs")
        print(f"{'':34} {'seconds':>8} {'pages/s':>9} {'x baseline':>11}")
        baseline = None
        for name, run in rows:
            seconds = median_seconds(run, args.runs)
            baseline = baseline or seconds
            print(f"{name:34} {seconds:8.3f} {args.pages / seconds:9.0f} {seconds / baseline:11.2f}")


def serve_provider(latency: float, connection: Connection) -> None:
    with ProviderServer() as server:
        server.script("bench", ok(delay=latency))
        connection.send(server.base_url)
        connection.recv()  # until the benchmark is done


@contextmanager
def provider_process(latency: float) -> Iterator[str]:
    """The provider server in a process of its own, as a remote provider would be: its
    threads do not compete with the client for this process's interpreter lock."""
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.Process(target=serve_provider, args=(latency, theirs), daemon=True)
    process.start()
    try:
        yield ours.recv()
    finally:
        ours.send("stop")
        process.join(10)


def bench_generation(args: argparse.Namespace) -> None:
    import asyncio
    import dataclasses
    import uuid

    stored: list[int] = []
    sources = [generation.Source(uuid.uuid4(), f"{SENTENCE}, conforme a cláusula {n} do contrato de número {n * 7}.") for n in range(args.items)]
    with provider_process(args.latency) as base_url:
        plan = generation.Plan(
            provider="openai_compatible",
            base_url=base_url,
            api_key="",
            model="bench",
            params={},
            system_prompt="Você cria dados de treino.",
            user_prompt_template="Contexto: {content}",
            variables={},
            expected_language=None,
            segments=sources,
        )
        policy = providers.CallPolicy(timeout=30, max_retries=0, backoff=0)

        def timed(run_plan: generation.Plan) -> generation.Report:
            return asyncio.run(
                generation.run(run_plan, policy, concurrency=args.concurrency, batch_size=10, store=lambda rows: stored.append(len(rows)) or len(rows), progress=lambda done, total: None)
            )

        # Warm-up, not timed: importing the OpenAI client alone takes about a second.
        timed(dataclasses.replace(plan, segments=sources[: args.concurrency]))
        report = timed(plan)
    assert report.created == args.items and not report.failures, report.as_dict()
    ideal = args.concurrency / args.latency
    measured = report.created / report.seconds
    print(f"generation: {args.items} items, provider answering after {args.latency * 1000:.0f} ms, concurrency {args.concurrency}")
    print(f"{'':34} {'seconds':>8} {'items/s':>9} {'of ideal':>9}")
    print(f"{'ideal (concurrency / latency)':34} {args.items / ideal:8.2f} {ideal:9.1f} {1:9.0%}")
    print(f"{'vur generation.run':34} {report.seconds:8.2f} {measured:9.1f} {measured / ideal:9.0%}  (target >= 80%)")


def export_fixture(directory: Path, count: int) -> tuple[Database, LocalArtifactStore, uuid.UUID]:
    """A migrated SQLite database holding one instruction dataset of `count` approved items."""
    url = f"sqlite:///{directory / 'export.db'}"
    migrations.upgrade(url)
    database = get_database(url)
    with database.session() as session:
        workspace = Workspace(name="bench")
        session.add(workspace)
        session.flush()
        workspace_id = str(workspace.id)
    dataset_id = uuid.UUID(instruction_dataset(database, workspace_id, []))
    rows = [
        {
            "id": uuid.uuid4(), "workspace_id": uuid.UUID(workspace_id), "dataset_id": dataset_id, "template_id": None,
            "instruction": f"Pergunta {n}: {SENTENCE}?", "input_text": "", "ideal_response": f"{SENTENCE} ({n}).", "bad_response": "Não sei.",
            "quality_score": 0.9, "quality_flags": {}, "generation_meta": {}, "review_status": "approved",
        }
        for n in range(count)
    ]
    with database.session() as session:
        for start in range(0, count, 10_000):
            session.execute(insert(InstructionItem), rows[start : start + 10_000])
    return database, LocalArtifactStore(directory / "artifacts"), dataset_id


def bench_export(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database, store, dataset_id = export_fixture(Path(tmp), args.export_items)

        def ours() -> None:
            with database.session() as session:
                dataset = session.get(Dataset, dataset_id)
                export = exports.create_export(session, store, dataset, None, ExportRequest())
                assert export.item_count == args.export_items
                session.rollback()  # the next run exports the same version again

        def floor() -> None:
            columns = (InstructionItem.instruction, InstructionItem.input_text, InstructionItem.ideal_response)
            with database.session() as session, open(Path(tmp) / "floor.jsonl", "w", encoding="utf-8") as out:
                for instruction, input_text, ideal, system in session.execute(select(*columns, Template.system_prompt).outerjoin(Template).where(InstructionItem.dataset_id == dataset_id)):
                    user = f"{instruction}\n\n{input_text}" if input_text else instruction
                    messages = [{"role": "system", "content": system}] if system else []
                    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": ideal}]
                    out.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")

        seconds_floor = median_seconds(floor, args.runs)
        seconds_ours = median_seconds(ours, args.runs)
        tracemalloc.start()
        ours()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        database.dispose()
    print(f"export: {args.export_items:,} approved items to chat JSONL (median of {args.runs})")
    print(f"{'':34} {'seconds':>8} {'items/s':>9} {'x floor':>8}")
    print(f"{'floor: SELECT + json.dumps':34} {seconds_floor:8.2f} {args.export_items / seconds_floor:9.0f} {1:8.2f}")
    print(f"{'vur exports.create_export':34} {seconds_ours:8.2f} {args.export_items / seconds_ours:9.0f} {seconds_ours / seconds_floor:8.2f}")
    print(f"peak Python allocations while exporting: {peak / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=("all", "extraction", "generation", "export"), default="all")
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--items", type=int, default=320)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--export-items", type=int, default=100_000)
    args = parser.parse_args()
    if args.part in ("all", "extraction"):
        bench_extraction(args)
    if args.part in ("all", "generation"):
        bench_generation(args)
    if args.part in ("all", "export"):
        bench_export(args)


if __name__ == "__main__":
    main()
