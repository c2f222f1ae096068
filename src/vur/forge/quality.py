"""Automatic checks on a generated item, so that reviewers can start with the doubtful ones.

`quality_flags` says which checks passed: lengths within bounds, ideal and bad responses
really different, the ideal response grounded in its segment, no near-duplicate of another
item of the dataset, and the language the one expected. `quality_score` is the weighted
share of the checks passed, 0 to 1. Plain word statistics: cheap enough to run on every
item, and explainable to a reviewer; the measures behind the flags are returned too.
"""

from __future__ import annotations

import re
import uuid
import zlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# Characters each field may have for the item to count as well-formed.
LENGTH_BOUNDS = {"instruction": (10, 2_000), "ideal_response": (20, 8_000), "bad_response": (2, 8_000)}
# Share of the ideal response's content words found in the segment.
GROUNDED_MIN = 0.3
# Word-shingle similarity (Jaccard) from which two items are near-duplicates.
DUPLICATE_MIN = 0.8
# Ideal and bad responses this similar (word Jaccard) are not a contrast.
DISTINCT_MAX = 0.85
WEIGHTS = {"length_ok": 0.2, "distinct_responses_ok": 0.2, "grounded_ok": 0.3, "unique_ok": 0.15, "language_ok": 0.15}

# Frequent words of the languages the forge's documents come in: enough to tell them apart.
STOPWORDS = {
    "pt": set("a o e de do da dos das em no na nos nas um uma para com não por que se os as ao à é são foi está ser tem mais como mas ou seu sua pelo pela isso este esta você".split()),
    "en": set("the and of to in is that it for was on are with as be this by not or have from at which but an they you were their has can will what there if".split()),
    "es": set("el la y de del en los las un una para con no por que se es son fue está ser tiene más como pero o su al lo este esta usted muy".split()),
}


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def language(text: str) -> str | None:
    """pt, en or es by their frequent words; None when the text is too short to tell."""
    counts = {name: 0 for name in STOPWORDS}
    for word in words(text):
        for name, vocabulary in STOPWORDS.items():
            counts[name] += word in vocabulary
    best = max(counts, key=counts.__getitem__)
    ranked = sorted(counts.values(), reverse=True)
    return best if ranked[0] >= 3 and ranked[0] >= 1.3 * ranked[1] else None


def grounding(answer: str, source: str) -> float:
    """Share of the answer's content words (4+ letters) that appear in the source."""
    content = {w for w in words(answer) if len(w) >= 4 and not w.isdigit()}
    if not content:
        return 0.0
    return len(content & set(words(source))) / len(content)


def _jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def shingles(text: str, size: int = 3) -> set[int]:
    tokens = words(text)
    if len(tokens) < size:
        return {zlib.crc32(" ".join(tokens).encode())}
    return {zlib.crc32(" ".join(tokens[i : i + size]).encode()) for i in range(len(tokens) - size + 1)}


def item_text(fields: dict[str, str]) -> str:
    """What makes an item itself, for near-duplicate detection."""
    return " ".join(fields.get(name, "") for name in ("instruction", "input_text", "ideal_response"))


_PRIME = (1 << 61) - 1
_BANDS, _ROWS = 16, 4


@cache
def _permutations() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(20240104)
    return tuple(rng.integers(low, 1 << 31, size=(_BANDS * _ROWS, 1), dtype=np.uint64) for low in (1, 0))  # type: ignore[return-value]


@dataclass
class DuplicateIndex:
    """Near-duplicates among a dataset's items, by MinHash over word 3-shingles with LSH
    banding: each item is compared only with those sharing a band, then by exact Jaccard."""

    shingle_sets: dict[uuid.UUID, set[int]] = field(default_factory=dict)
    buckets: dict[tuple[int, bytes], list[uuid.UUID]] = field(default_factory=dict)

    def add(self, item_id: uuid.UUID, text: str) -> uuid.UUID | None:
        """Index the item; return the id of an earlier near-duplicate of it, if any."""
        import numpy as np

        own = shingles(text)
        factors, offsets = _permutations()
        hashes = np.fromiter(own, dtype=np.uint64, count=len(own))[None, :]
        # 31-bit factors on 32-bit hashes stay below 2**64: no overflow before the modulo.
        signature = ((factors * hashes + offsets) % _PRIME).min(axis=1)
        keys = [(band, signature[band * _ROWS : (band + 1) * _ROWS].tobytes()) for band in range(_BANDS)]
        match = None
        for key in keys:
            for other in self.buckets.get(key, ()):
                if _jaccard(own, self.shingle_sets[other]) >= DUPLICATE_MIN:
                    match = other
                    break
            if match is not None:
                break
        self.shingle_sets[item_id] = own
        for key in keys:
            self.buckets.setdefault(key, []).append(item_id)
        return match


def assess(fields: dict[str, str], segment: str | None, expected_language: str | None, duplicate_of: uuid.UUID | None) -> tuple[float, dict[str, bool], dict[str, Any]]:
    """(quality_score, quality_flags, the measures behind them) of one item. Without its
    segment (deleted since), grounding cannot be checked and counts as failed."""
    ideal, bad = fields["ideal_response"], fields["bad_response"]
    ground = grounding(ideal, segment) if segment else 0.0
    contrast = _jaccard(set(words(ideal)), set(words(bad)))
    detected = language(" ".join((fields["instruction"], ideal)))
    expected = expected_language or (language(segment) if segment else None)
    flags = {
        "length_ok": all(low <= len(fields[name]) <= high for name, (low, high) in LENGTH_BOUNDS.items()),
        "distinct_responses_ok": ideal.strip().lower() != bad.strip().lower() and contrast < DISTINCT_MAX,
        "grounded_ok": ground >= GROUNDED_MIN,
        "unique_ok": duplicate_of is None,
        "language_ok": expected is None or detected is None or detected == expected,
    }
    measures = {
        "grounding": round(ground, 3),
        "response_similarity": round(contrast, 3),
        "language": detected,
        "expected_language": expected,
        "duplicate_of": str(duplicate_of) if duplicate_of else None,
    }
    score = round(sum(WEIGHTS[name] for name, passed in flags.items() if passed), 3)
    return score, flags, measures
