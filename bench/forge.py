"""Forge extraction benchmark: a generated 200-page PDF through our extraction and
segmentation, beside pypdfium2's text extraction alone, in the same run.

    .venv/bin/python bench/forge.py [--pages 200] [--runs 5]

Prints pages per second (median of the runs) for the library alone, our extraction
(which adds normalisation and paragraph recovery), and extraction plus segmentation
into paragraphs and clauses, with each row's time relative to the library's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.forge.samples import make_pdf  # noqa: E402
from vur.forge.extract import extract  # noqa: E402
from vur.forge.segment import segment  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
