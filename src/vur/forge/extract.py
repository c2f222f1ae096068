"""Documents to text: format sniffing from the bytes, and text extraction per format.

Plain functions (no database, no HTTP): the upload route, the processing job and the
benchmark call the same code. The document libraries are imported inside the functions
so that the API starts without loading them.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

SNIFF_BYTES = 8192
FORMATS = ("pdf", "docx", "txt", "md")
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain",
    "md": "text/markdown",
}
# More text than this is refused: a small compressed PDF can expand to gigabytes of text.
MAX_TEXT_CHARS = 20_000_000
# A DOCX is a zip: its entries' declared sizes are checked before any XML is expanded.
MAX_DOCX_EXPANDED = 256 * 1_048_576
MAX_DOCX_ENTRIES = 5_000
MAX_DOCX_RATIO = 200  # deflate rarely beats ~20:1 on real XML; bombs reach 1000:1

# Signatures named in the refusal so that the user learns what the file really is.
_BINARY_SIGNATURES = (
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O or Java class file"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office (OLE) file: save it as DOCX"),
)
_WESTERN = ("cp1252", "latin_1", "iso8859_15")
_CHAOS_MARGIN = 0.02
_TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_MARKDOWN = re.compile(r"^(#{1,6} \S|```|\s*[-*+] \S.*$)|\[[^\]\n]+\]\([^)\s]+\)", re.MULTILINE)


class ExtractionError(Exception):
    """The file cannot become text; the message says why, in words for the user."""

    def __init__(self, reason: str, details: dict[str, object] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or {}


@dataclass
class Extracted:
    """The text of a document. PDFs keep their pages (`page_starts`: the offset in `text`
    where each page begins) so that segments can say which page they come from."""

    text: str
    pages: int | None = None
    page_starts: list[int] = field(default_factory=list)


def sniff_format(head: bytes) -> str:
    """pdf, docx (to be confirmed by `check_docx`: every OOXML file is a zip), txt or md,
    from the first bytes only; anything else raises ExtractionError."""
    if not head:
        raise ExtractionError("The file is empty", {"file": "0 bytes"})
    # The PDF header may follow a little junk (the spec allows it within the first 1 KiB).
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "docx"
    if not head.startswith(_TEXT_BOMS):
        for signature, what in _BINARY_SIGNATURES:
            # "MZ" alone also starts words: an executable has NUL bytes right after it.
            if head.startswith(signature) and (signature != b"MZ" or b"\x00" in head[:64]):
                raise ExtractionError(f"The file is {what}, not a PDF, DOCX or text document", {"file": "unsupported type"})
        if b"\x00" in head:
            raise ExtractionError("The file is binary, not a PDF, DOCX or text document", {"file": "unsupported type"})
    text = decode_text(head, partial=True)
    return "md" if _MARKDOWN.search(text) else "txt"


def check_docx(path: Path, max_expanded: int = MAX_DOCX_EXPANDED) -> None:
    """A readable Word document whose declared sizes are sane, judged from the zip's
    directory alone, before anything is decompressed."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExtractionError("The file looks like a zip archive but cannot be opened", {"file": str(exc)}) from exc
    if not any(entry.filename == "word/document.xml" for entry in entries):
        raise ExtractionError("The zip archive is not a Word document (.docx)", {"file": "no word/document.xml"})
    if len(entries) > MAX_DOCX_ENTRIES:
        raise ExtractionError(f"The DOCX has {len(entries):,} entries, over the limit of {MAX_DOCX_ENTRIES:,}", {"file": "too many entries (zip bomb?)"})
    expanded = sum(entry.file_size for entry in entries)
    if expanded > max_expanded:
        raise ExtractionError(
            f"The DOCX would expand to {expanded:,} bytes, over the limit of {max_expanded:,}", {"file": "compressed content too large (zip bomb?)"}
        )
    for entry in entries:
        if entry.file_size > 1_048_576 and entry.file_size > MAX_DOCX_RATIO * max(entry.compress_size, 1):
            raise ExtractionError(
                f"The DOCX entry '{entry.filename[:100]}' is compressed {entry.file_size // max(entry.compress_size, 1):,} to 1",
                {"file": "compression ratio too high (zip bomb?)"},
            )


def decode_text(data: bytes, *, partial: bool = False) -> str:
    """UTF-8 when it is, else the encoding charset-normalizer finds (Latin-1 and
    Windows-1252 files are common). `partial`: `data` may end inside a character."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # A sample cut inside a multi-byte character is still UTF-8.
        if partial and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8-sig")
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise ExtractionError("The file is not text in any encoding we recognise", {"file": "undecodable bytes"})
    best = matches[0]
    # Single-byte code pages score nearly alike on short texts (cp1250 reads "ação" as
    # "açăo" almost as well, by its measures): within a small margin, prefer the Western
    # ones, by far the most common in the documents this platform receives.
    close = [m for m in matches if m.chaos <= best.chaos + _CHAOS_MARGIN]
    return str(next((m for m in close if m.encoding in _WESTERN), best))


def extract(path: Path, file_format: str, *, max_chars: int = MAX_TEXT_CHARS) -> Extracted:
    """The document's text, or ExtractionError naming why there is none."""
    if file_format == "pdf":
        extracted = _pdf(path, max_chars)
    elif file_format == "docx":
        extracted = Extracted(_docx(path))
    elif file_format in ("txt", "md"):
        if path.stat().st_size > 4 * max_chars:
            raise ExtractionError(f"The text is over the limit of {max_chars:,} characters", {"file": "too much text"})
        extracted = Extracted(normalize(decode_text(path.read_bytes())))
    else:
        raise ExtractionError(f"Unknown document format '{file_format}'")
    if len(extracted.text) > max_chars:
        raise ExtractionError(f"The text is over the limit of {max_chars:,} characters", {"file": "too much text"})
    if not extracted.text.strip():
        raise ExtractionError("The document has no text (a scanned PDF needs OCR first)", {"file": "no text"})
    return extracted


_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffe\uffff]")
_BLANKS = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    """One newline convention, no control characters, no trailing or repeated spaces,
    at most one blank line in a row (a blank line is a paragraph break)."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _pdf(path: Path, max_chars: int) -> Extracted:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            raise ExtractionError("The PDF is encrypted (password protected)", {"file": "encrypted"}) from exc
        if exc.err_code == pdfium_c.FPDF_ERR_SECURITY:
            raise ExtractionError("The PDF is encrypted with an unsupported security handler", {"file": "encrypted"}) from exc
        raise ExtractionError("The PDF is damaged and cannot be read", {"file": str(exc)}) from exc
    pages: list[str] = []
    size = 0
    try:
        for index in range(len(document)):
            page = document[index]
            try:
                textpage = page.get_textpage()
                try:
                    text = paragraphs_from_layout(normalize(textpage.get_text_range()))
                finally:
                    textpage.close()
            finally:
                page.close()
            size += len(text) + 2
            if size > max_chars:
                raise ExtractionError(f"The text is over the limit of {max_chars:,} characters", {"file": "too much text", "page": index + 1})
            pages.append(text)
    except pdfium.PdfiumError as exc:
        raise ExtractionError(f"The PDF is damaged and cannot be read (page {len(pages) + 1})", {"file": str(exc)}) from exc
    finally:
        document.close()
    starts, offset = [], 0
    for text in pages:
        starts.append(offset)
        offset += len(text) + 2
    return Extracted("\n\n".join(pages), pages=len(pages), page_starts=starts)


_ENDS_SENTENCE = re.compile(r"[.!?:;…\"”)]$")


def paragraphs_from_layout(text: str) -> str:
    """PDF text comes as lines with no paragraph marks: a line that ends a sentence
    well short of the block's width ends its paragraph, so a blank line goes there."""
    out: list[str] = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        width = max(len(line) for line in lines)
        for position, line in enumerate(lines):
            out.append(line)
            last = position == len(lines) - 1
            if not last and width >= 40 and len(line) < 0.8 * width and _ENDS_SENTENCE.search(line):
                out.append("")
        out.append("")
    return "\n".join(out).strip()


def _docx(path: Path) -> str:
    check_docx(path)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
        blocks = [_table_text(item) if isinstance(item, Table) else item.text for item in document.iter_inner_content()]
    except Exception as exc:  # python-docx and lxml raise many types for damaged parts
        raise ExtractionError("The DOCX is damaged and cannot be read", {"file": f"{type(exc).__name__}: {str(exc)[:200]}"}) from exc
    # Each Word paragraph is a paragraph: a blank line between them.
    return normalize("\n\n".join(block for block in blocks if block.strip()))


def _table_text(table: object) -> str:
    """A table as one line per row; with a header row, each cell is labelled by its
    column ("Cliente: Ana | Plano: Ouro"), so a row reads as a record."""
    rows: list[list[str]] = []
    for row in table.rows:  # type: ignore[attr-defined]
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans.
            if cell._tc is not previous:
                cells.append(" ".join(cell.text.split()))
            previous = cell._tc
        rows.append(cells)
    if len(rows) < 2:
        return "\n".join(" | ".join(cells) for cells in rows)
    header, body = rows[0], rows[1:]
    lines = []
    for cells in body:
        labelled = [f"{header[i]}: {value}" if i < len(header) and header[i] else value for i, value in enumerate(cells) if value]
        lines.append(" | ".join(labelled))
    return "\n".join(line for line in lines if line)
