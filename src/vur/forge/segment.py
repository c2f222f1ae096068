"""Text to segments: one function per segment type finds the document's natural units
(paragraphs, clauses, chat turns, question/answer pairs, CRM records); units longer than
`max_length` are split on sentence boundaries, each part starting with the last
`overlap` characters (at most) of the one before.

Plain functions: the processing job and the benchmark call them on extracted text.
"""

from __future__ import annotations

import csv
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class SegmentationError(Exception):
    """The text has none of the units the segment type looks for."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Unit:
    """One natural unit: its text, where it starts in the document (for the page), what
    is known about it, and a `head` repeated at the start of each part if it is split
    (an FAQ's question, so that every part still says what it answers)."""

    content: str
    start: int
    metadata: dict[str, Any] = field(default_factory=dict)
    head: str = ""


@dataclass
class Piece:
    content: str
    metadata: dict[str, Any]


def segment(text: str, segment_type: str, *, max_length: int, overlap: int = 0, page_starts: list[int] | None = None) -> list[Piece]:
    if segment_type not in _SEGMENTERS:
        raise SegmentationError(f"Unknown segment type '{segment_type}'")
    if not 0 <= overlap < max_length:
        raise ValueError("overlap must be at least 0 and less than max_length")
    pieces = []
    for unit in _SEGMENTERS[segment_type](text):
        parts = _split_unit(unit, max_length, overlap)
        for number, part in enumerate(parts, start=1):
            metadata = dict(unit.metadata)
            if page_starts:
                metadata["page"] = bisect_right(page_starts, unit.start)
            if len(parts) > 1:
                metadata.update(part=number, parts=len(parts))
            pieces.append(Piece(part, metadata))
    return pieces


def _split_unit(unit: Unit, max_length: int, overlap: int) -> list[str]:
    content = unit.content.strip()
    if len(content) <= max_length:
        return [content]
    body = content[len(unit.head) :].strip() if unit.head and content.startswith(unit.head) else ""
    budget = max_length - len(unit.head) - 1
    if body and budget >= max_length // 2:
        return [f"{unit.head}\n{part}" for part in split_long(body, budget, min(overlap, budget // 2))]
    return split_long(content, max_length, overlap)


# --- splitting long text ------------------------------------------------------------

# A sentence ends at . ! ? or … (and any closing quotes or brackets) before a space, or
# at a line break.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")
_WORD = re.compile(r"\S+")


def split_long(text: str, max_length: int, overlap: int = 0) -> list[str]:
    """Parts of at most `max_length` characters, cut at sentence ends when a sentence end
    leaves the part at least half full, else between words, else (a word longer than a
    part) anywhere. Each part after the first starts with a tail of the previous part of
    at most `overlap` characters, from a sentence start if one is in reach, else a word."""
    text = text.strip()
    if len(text) <= max_length:
        return [text] if text else []
    sentence_ends, sentence_starts = [], [0]
    for match in _SENTENCE_END.finditer(text):
        sentence_ends.append(match.start() if match.group() == "\n" else match.end())
        following = _WORD.search(text, match.end())
        if following:
            sentence_starts.append(following.start())
    words = [match.span() for match in _WORD.finditer(text)]
    word_starts, word_ends = [w[0] for w in words], [w[1] for w in words]

    parts: list[str] = []
    start, previous_end = 0, 0
    while True:
        limit = start + max_length
        if limit >= len(text):
            parts.append(text[start:].strip())
            return parts
        floor = max(start, previous_end)
        end = _last_in(sentence_ends, floor, limit)
        if end is None or end - start < max_length // 2:
            end = _last_in(word_ends, floor, limit) or limit
        parts.append(text[start:end].strip())
        next_start = None
        if overlap:
            low = max(end - overlap, start + 1)
            next_start = _first_in(sentence_starts, low, end) or _first_in(word_starts, low, end)
        if next_start is None and not text[end].isspace():
            next_start = end  # a word longer than a part goes on where it was cut
        if next_start is None:
            following = _WORD.search(text, end)
            if following is None:
                return parts
            next_start = following.start()
        start, previous_end = next_start, end


def _last_in(values: list[int], low: int, high: int) -> int | None:
    """The largest value in (low, high]."""
    index = bisect_right(values, high) - 1
    return values[index] if index >= 0 and values[index] > low else None


def _first_in(values: list[int], low: int, high: int) -> int | None:
    """The smallest value in [low, high)."""
    index = bisect_left(values, low)
    return values[index] if index < len(values) and values[index] < high else None


# --- the natural units of each segment type -------------------------------------------


def _lines(text: str) -> list[tuple[int, str]]:
    out, offset = [], 0
    for line in text.split("\n"):
        out.append((offset, line))
        offset += len(line) + 1
    return out


_BLOCK_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A short line without closing punctuation reads as a title ("CLÁUSULA PRIMEIRA – DO
# OBJETO", "## Pagamentos"): it joins the unit after it instead of standing alone.
_CLOSING = re.compile(r"[.;:!?…\"”)]$")


def _is_title(line: str) -> bool:
    return "\n" not in line and len(line) <= 120 and not _CLOSING.search(line)


def _blocks(text: str) -> list[tuple[int, str]]:
    out, position = [], 0
    for match in _BLOCK_BREAK.finditer(text):
        if text[position : match.start()].strip():
            out.append((position, text[position : match.start()].strip()))
        position = match.end()
    if text[position:].strip():
        out.append((position, text[position:].strip()))
    return out


def paragraphs(text: str) -> list[Unit]:
    units: list[Unit] = []
    pending: tuple[int, str] | None = None
    for start, block in _blocks(text):
        if pending is not None:
            start, block = pending[0], f"{pending[1]}\n{block}"
            pending = None
        if _is_title(block):
            pending = (start, block)
            continue
        units.append(Unit(block, start))
    if pending is not None:
        units.append(Unit(pending[1], pending[0]))
    return units


_CLAUSE = re.compile(
    r"^\s*(?:"
    r"(?P<clausula>cl[áa]usula\s+(?:\d{1,3}\s*[ªaº°o]?|[a-zà-ú]+(?:\s+[a-zà-ú]+)?)\b)"
    r"|(?P<artigo>art(?:igo|\.)?\s*\d{1,4}\s*[º°o]?(?:-[a-z])?)\.?(?=\s|$)"
    r"|(?P<capitulo>(?:cap[íi]tulo|se[çc][ãa]o|t[íi]tulo)\s+[ivxlcdm\d]+)\b"
    r"|(?P<item>\d{1,3}(?:\.\d{1,3})+\.?|\d{1,3}[.)])(?=\s+\S)"
    r")",
    re.IGNORECASE,
)


def clauses(text: str) -> list[Unit]:
    """Clauses and articles of contracts and laws: "Cláusula 1ª", "CLÁUSULA SEGUNDA",
    "Art. 5º", "Artigo 10", "Capítulo II", and numbered items "1.", "1.1", "2.3.1". Text
    before the first is the preamble; paragraphs (§) and items (I, a) stay in their clause."""
    found = []
    for start, line in _lines(text):
        match = _CLAUSE.match(line)
        if match:
            kind = match.lastgroup or "item"
            found.append((start, kind, " ".join(match.group(kind).split())))
    if not found:
        raise SegmentationError("No clauses found: expected numbered clauses or articles such as 'Cláusula 1ª', 'Art. 5º', '1.' or '1.1'")
    units = []
    if text[: found[0][0]].strip():
        units.append(Unit(text[: found[0][0]].strip(), 0, {"kind": "preamble", "number": None}))
    title: tuple[int, str] | None = None
    for index, (start, kind, number) in enumerate(found):
        end = found[index + 1][0] if index + 1 < len(found) else len(text)
        content = text[start:end].strip()
        if title is None and index + 1 < len(found) and _is_title(content):
            title = (start, content)
            continue
        metadata = {"kind": kind, "number": number, "heading": content.split("\n", 1)[0][:200]}
        if title is not None:
            metadata["title"] = title[1][:200]
            start, content = title[0], f"{title[1]}\n{content}"
            title = None
        units.append(Unit(content, start, metadata))
    return units


_STAMP = r"(\d{1,2}/\d{1,2}/\d{2,4}),?\s+(\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp]\.?[Mm]\.?)?)"
# WhatsApp exports: "[12/03/2024 10:15] Ana: oi" (iOS) and "12/03/2024 10:15 - Ana: oi" (Android).
_STAMPED = (re.compile(rf"^\s*\[{_STAMP}\]\s*(.*)$"), re.compile(rf"^\s*{_STAMP}\s+[-–]\s*(.*)$"))
_SPEAKER = re.compile(r"^(?P<speaker>[^\s:][^:\n]{0,59}?):\s+(?P<text>\S.*)$")
# Without timestamps, a speaker is a name of at most four words: "Ana:", "Cliente:", "Atendente VR:".
_PLAIN_SPEAKER = re.compile(r"^\s*(?P<speaker>[^\W\d_][\w.'\-]*(?: [\w.'\-]+){0,3}):\s+(?P<text>\S.*)$")


def _stamped(line: str) -> tuple[str, str] | None:
    """The timestamp and the rest of a timestamped export line."""
    for pattern in _STAMPED:
        if match := pattern.match(line):
            return f"{match.group(1)} {match.group(2)}", match.group(3)
    return None


def chat_messages(text: str) -> list[Unit]:
    """Speaker turns: consecutive messages of one speaker make one turn. Lines without a
    speaker continue the message before them; timestamped lines without a speaker are
    the app's own notices and are left out."""
    lines = _lines(text)
    stamped = any(_stamped(line) for _, line in lines[:2000])
    messages: list[dict[str, Any]] = []
    for start, line in lines:
        if not line.strip():
            continue
        if stamped:
            if found := _stamped(line):
                stamp, rest = found
                said = _SPEAKER.match(rest)
                if said is None:
                    continue  # "Messages and calls are end-to-end encrypted", "Ana joined"...
                messages.append({"start": start, "speaker": said.group("speaker").strip(), "timestamp": stamp, "lines": [said.group("text")]})
                continue
        else:
            said = _PLAIN_SPEAKER.match(line)
            if said:
                messages.append({"start": start, "speaker": said.group("speaker").strip(), "timestamp": None, "lines": [said.group("text")]})
                continue
        if messages:
            messages[-1]["lines"].append(line.strip())
    if not messages:
        raise SegmentationError("No chat messages found: expected lines such as '[12/03/2024 10:15] Ana: ...', '12/03/2024 10:15 - Ana: ...' or 'Ana: ...'")
    units: list[Unit] = []
    for message in messages:
        said = "\n".join(message["lines"])
        last = units[-1] if units else None
        if last is not None and last.metadata["speaker"] == message["speaker"]:
            last.content += "\n" + said
            last.metadata["messages"] += 1
            continue
        metadata = {"speaker": message["speaker"], "timestamp": message["timestamp"], "messages": 1}
        units.append(Unit(f"{message['speaker']}: {said}", message["start"], metadata, head=f"{message['speaker']}:"))
    return units


_QUESTION_PREFIX = re.compile(r"^\s*(?:\d{1,3}[.)]\s*)?(?:pergunta|quest[ãa]o|question|p|q)\s*\d*\s*[:.)\-–]\s*(?P<text>\S.*)$", re.IGNORECASE)
_ANSWER_PREFIX = re.compile(r"^\s*(?:(?:resposta|answer|r)\s*[:.\-–]|a\s*:)\s*(?P<text>.*)$", re.IGNORECASE)
# An unprefixed question: a line ending in "?", maybe numbered, bulleted or a heading.
_QUESTION_LINE = re.compile(r"^\s*(?:#{1,6}\s*|\*\*|[-*•]\s+|\d{1,3}[.)]\s*)?(?P<text>[^\n]{3,300}\?)\s*(?:\*\*)?\s*$")


def faq_pairs(text: str) -> list[Unit]:
    """Question/answer pairs: "P:/R:", "Pergunta:/Resposta:", "Q:/A:" when the text uses
    such prefixes, else each line ending in "?" and the lines after it. Text before the
    first question is left out, and so is a question without an answer."""
    prefixed = any(_QUESTION_PREFIX.match(line) for _, line in _lines(text))
    pairs: list[dict[str, Any]] = []
    for start, line in _lines(text):
        if not line.strip():
            continue
        asked = _QUESTION_PREFIX.match(line) if prefixed else _QUESTION_LINE.match(line)
        if asked:
            pairs.append({"start": start, "question": asked.group("text").strip(), "answer": []})
        elif pairs:
            answered = _ANSWER_PREFIX.match(line) if not pairs[-1]["answer"] else None
            piece = answered.group("text") if answered else line
            if piece.strip():
                pairs[-1]["answer"].append(piece.strip())
    units = [
        Unit(f"{pair['question']}\n" + "\n".join(pair["answer"]), pair["start"], {"question": pair["question"][:500]}, head=pair["question"])
        for pair in pairs
        if pair["answer"]
    ]
    if not units:
        raise SegmentationError("No question/answer pairs found: expected 'P:'/'R:' or 'Pergunta:'/'Resposta:' lines, or questions ending in '?' followed by their answers")
    return units


_SEPARATOR = re.compile(r"^\s*(?:[-=*_~#]\s*){3,}$")
_FIELD = re.compile(r"^\s*(?P<key>[^\W\d_][\w /#.()\-]{0,39}?)\s*:\s*(?P<value>.*)$")
MAX_FIELDS = 30


def crm_records(text: str) -> list[Unit]:
    """One unit per record. Records are told apart, in this order of preference, by
    separator lines ("----"), by rows of a delimited export with a header, by the first
    field name coming round again ("Cliente: ..."), or by blank lines."""
    lines = _lines(text)
    separated = [index for index, (_, line) in enumerate(lines) if _SEPARATOR.match(line)]
    if separated:
        groups = _groups(lines, separated, skip_marker=True)
    elif (rows := _delimited_rows(lines)) is not None:
        groups = rows
    else:
        first_key = next((m.group("key") for _, line in lines if (m := _FIELD.match(line))), None)
        starts = [index for index, (_, line) in enumerate(lines) if first_key and (m := _FIELD.match(line)) and m.group("key") == first_key]
        groups = _groups(lines, starts, skip_marker=False) if len(starts) >= 2 else [(start, block) for start, block in _blocks(text)]
    units = []
    for number, (start, block) in enumerate((g for g in groups if g[1].strip()), start=1):
        fields = {}
        for line in block.split("\n"):
            match = _FIELD.match(line)
            if match and match.group("value").strip() and len(fields) < MAX_FIELDS:
                fields.setdefault(match.group("key").strip(), match.group("value").strip()[:200])
        units.append(Unit(block.strip(), start, {"record": number, "fields": fields}))
    if not units:
        raise SegmentationError("No records found")
    return units


def _groups(lines: list[tuple[int, str]], boundaries: list[int], *, skip_marker: bool) -> list[tuple[int, str]]:
    """The lines between boundaries (a boundary line is left out when it is a separator)."""
    edges = [0, *boundaries, len(lines)] if boundaries[0] != 0 else [*boundaries, len(lines)]
    markers = set(boundaries) if skip_marker else set()
    groups = []
    for low, high in zip(edges, edges[1:], strict=False):
        body = lines[low + 1 if low in markers else low : high]
        if body:
            groups.append((body[0][0], "\n".join(line for _, line in body)))
    return groups


def _delimited_rows(lines: list[tuple[int, str]]) -> list[tuple[int, str]] | None:
    """A delimited export (CSV, TSV, semicolons): each row as "column: value" lines."""
    filled = [(start, line) for start, line in lines if line.strip()]
    if len(filled) < 2:
        return None
    header_line = filled[0][1]
    for delimiter in (";", "\t", ",", "|"):
        if header_line.count(delimiter) < 1:
            continue
        try:
            rows = list(csv.reader([line for _, line in filled], delimiter=delimiter))
        except csv.Error:  # a field past the csv module's limit: not a table of short fields
            return None
        width = len(rows[0])
        if all(len(row) == width for row in rows) and all(0 < len(cell.strip()) <= 60 for cell in rows[0]):
            header = [cell.strip() for cell in rows[0]]
            return [(start, "\n".join(f"{name}: {value.strip()}" for name, value in zip(header, row, strict=True) if value.strip())) for (start, _), row in zip(filled[1:], rows[1:], strict=True)]
    return None


_SEGMENTERS: dict[str, Callable[[str], list[Unit]]] = {
    "paragraph": paragraphs,
    "clause": clauses,
    "chat_message": chat_messages,
    "faq": faq_pairs,
    "crm_record": crm_records,
}
