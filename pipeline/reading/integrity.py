"""Is this the whole page? Decided from the page itself, never from a comparison with the archive.

A flaky portal sends pages cut short (the markup's end missing, fewer bytes
than declared), empty answers, and pages whose body container is empty. Such
a page is fetched again; if it stays broken it is quarantined with the
reason, and never becomes a version. Comparing with the archived version
(e.g. "the body shrank by half") is deliberately not a rule: a real edit can
do exactly that.
"""
from __future__ import annotations

import re

END_OF_DOCUMENT = re.compile(rb"</html\s*>", re.I)
TAG = re.compile(r"<[^>]*>")
# How far from the end the closing tag may sit (trailing comments, whitespace, a counter script).
TAIL_BYTES = 4096


def page_problem(raw: bytes, headers: dict) -> str | None:
    """Whether the bytes received are a complete page."""
    if not raw.strip():
        return "empty page: the portal answered with no content"
    declared = headers.get("Content-Length")
    if declared and declared.isdigit() and len(raw) < int(declared):
        return f"truncated page: {len(raw)} of the {declared} bytes declared"
    if not END_OF_DOCUMENT.search(raw[-TAIL_BYTES:]):
        return "truncated page: the markup's end (</html>) is missing"
    return None


def body_problem(fields: dict) -> str | None:
    """An article page whose body container is there but holds no text."""
    body = fields.get("body_html")
    if body is not None and not TAG.sub("", body).replace("\u3000", "").strip():
        return "empty body: the body container holds no text"
    return None
