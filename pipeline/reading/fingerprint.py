"""Content fingerprints: what decides whether an article changed, or is a copy of another.

The content hash covers the cleaned fields a reader sees as the article;
the view counter, related list and prev/next links change whenever other
articles are published and are deliberately left out.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime, timezone

HASHED_FIELDS = (
    "channel", "title", "published_at", "lede", "body_text", "body_html",
    "editor", "source", "origin_source", "tags",
)
# Paragraphs shorter than this are too generic ("本文转载自…") to say two bodies share a story.
MIN_FINGERPRINT_PARAGRAPH = 20
# Share of an article's substantial paragraphs another must hold to be checked as a copy.
CANDIDATE_PARAGRAPH_SHARE = 0.5
# Character-trigram Jaccard similarity above which two bodies are the same story.
# Calibrated on the replica: republications score 0.85-1.0, unrelated articles below 0.3.
NEAR_DUPLICATE_SIMILARITY = 0.8


def _canonical_value(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return value


def content_hash(fields: dict) -> str:
    payload = {name: _canonical_value(fields.get(name)) for name in HASHED_FIELDS}
    data = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def body_hash(body_text: str) -> str:
    return hashlib.sha256(body_text.encode("utf-8")).hexdigest()


def paragraph_hashes(body_text: str) -> list[int]:
    """63-bit hashes (they fit a signed BIGINT) of the substantial paragraphs, deduplicated."""
    out = []
    for paragraph in body_text.split("\n"):
        if len(paragraph) < MIN_FINGERPRINT_PARAGRAPH:
            continue
        digest = hashlib.blake2b(paragraph.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "big") >> 1
        if value not in out:
            out.append(value)
    return out


def trigrams(text: str) -> Counter:
    text = text.replace("\n", "")
    return Counter(text[i:i + 3] for i in range(max(len(text) - 2, 1)))


def similarity(a: str, b: str) -> float:
    """Weighted Jaccard of character trigrams (a multiset, so repetitive text is not degenerate)."""
    ga, gb = trigrams(a), trigrams(b)
    union = sum((ga | gb).values())
    return sum((ga & gb).values()) / union if union else 0.0


def fingerprint(item):
    """The article's content hash, body hash and paragraph hashes, set on the item (a CleanArticle)."""
    item.content_hash = content_hash(item.content_fields())
    item.body_hash = body_hash(item.body_text)
    item.paragraph_hashes = paragraph_hashes(item.body_text)
    return item
