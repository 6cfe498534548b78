"""A readable diff of two versions: by field, by paragraph, and by character inside a paragraph.

Chinese text has no spaces, so a word diff says nothing; changed paragraphs
are diffed character by character with [-removed-] and {+added+} marks.
"""
from __future__ import annotations

import difflib

from pipeline.models import ArticleVersion

DIFFED_FIELDS = ("title", "published_at", "lede", "editor", "source", "origin_source", "tags", "channel")


# Below this share of common characters, marking single characters is noise: show old and new whole.
REWRITE_RATIO = 0.4


def char_diff(old: str, new: str) -> str:
    out = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    if matcher.ratio() < REWRITE_RATIO:
        return f"[-{old}-]{{+{new}+}}"
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            out.append(old[a1:a2])
        if op in ("delete", "replace"):
            out.append(f"[-{old[a1:a2]}-]")
        if op in ("insert", "replace"):
            out.append(f"{{+{new[b1:b2]}+}}")
    return "".join(out)


def paragraph_diff(old: str, new: str) -> list[str]:
    """Lines: '  ' unchanged, '- ' removed, '+ ' added, '~ ' changed (with character marks)."""
    a, b = old.split("\n"), new.split("\n")
    lines = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            lines += [f"  {p}" for p in a[a1:a2]]
        elif op == "replace" and a2 - a1 == b2 - b1:
            lines += [f"~ {char_diff(x, y)}" for x, y in zip(a[a1:a2], b[b1:b2])]
        else:
            lines += [f"- {p}" for p in a[a1:a2]]
            lines += [f"+ {p}" for p in b[b1:b2]]
    return lines


def version_diff(old: ArticleVersion, new: ArticleVersion, context: int | None = 1) -> str:
    head = [f"version {old.version} ({old.change}, {old.valid_from:%Y-%m-%d %H:%M:%S} UTC) → "
            f"version {new.version} ({new.change}, {new.valid_from:%Y-%m-%d %H:%M:%S} UTC)"]
    for name in DIFFED_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            if isinstance(a, str) and isinstance(b, str):
                head.append(f"{name}: {char_diff(a, b)}")
            else:
                head.append(f"{name}: {a} → {b}")
    body = paragraph_diff(old.body_text, new.body_text)
    if all(line.startswith("  ") for line in body):
        head.append("body: unchanged")
    else:
        head.append("body:")
        head += _with_context(body, context)
    return "\n".join(head)


def _with_context(lines: list[str], context: int | None) -> list[str]:
    """Unchanged paragraphs far from any change are folded to '…'."""
    if context is None:
        return lines
    changed = [i for i, line in enumerate(lines) if not line.startswith("  ")]
    keep = {j for i in changed for j in range(i - context, i + context + 1)}
    out, folded = [], False
    for i, line in enumerate(lines):
        if i in keep:
            out.append(line)
            folded = False
        elif not folded:
            out.append("  …")
            folded = True
    return out
