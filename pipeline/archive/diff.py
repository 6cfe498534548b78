"""What changed between two versions: by field, by paragraph, and by character inside a paragraph.

One diff, shown two ways: as data (VersionDiff, for the web page and the API)
and as text (`render_text`, for `portal-archive diff` and the demo), where
removed characters read [-…-] and added ones {+…+}. Chinese text has no
spaces, so a word diff says nothing: a changed paragraph is diffed character
by character, and a paragraph rewritten beyond REWRITE_RATIO, or longer than
MAX_CHAR_DIFF, is shown old and new whole.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pipeline.archive.models import ArticleVersion

DIFFED_FIELDS = ("title", "published_at", "lede", "editor", "source", "origin_source", "tags", "channel")
# Below this share of common characters, marking single characters is noise: show old and new whole.
REWRITE_RATIO = 0.4
# Beyond this many characters on either side a character diff costs more than
# it tells (SequenceMatcher is quadratic at worst): the paragraph shows whole.
MAX_CHAR_DIFF = 20_000


@dataclass
class Segment:
    op: str  # equal, delete, insert
    text: str


@dataclass
class ParagraphRow:
    kind: str  # equal, changed, removed, added, folded
    old: list[Segment] | None = None
    new: list[Segment] | None = None
    folded: int = 0  # for kind == folded: how many equal paragraphs are hidden


@dataclass
class FieldChange:
    name: str
    old: list[Segment]
    new: list[Segment]


@dataclass
class VersionDiff:
    old: ArticleVersion
    new: ArticleVersion
    fields: list[FieldChange] = field(default_factory=list)
    body: list[ParagraphRow] = field(default_factory=list)
    body_changed: bool = False


def char_ops(old: str, new: str) -> list[tuple[str, str, str]]:
    """The edit from old to new as runs of (op, old text, new text), op one of equal, delete,
    insert, replace; one replace of the whole when marking characters would be noise or too dear."""
    if old == new:
        return [("equal", old, new)]
    if max(len(old), len(new)) > MAX_CHAR_DIFF:
        return [("replace", old, new)]
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    if matcher.ratio() < REWRITE_RATIO:
        return [("replace", old, new)]
    return [(op, old[a1:a2], new[b1:b2]) for op, a1, a2, b1, b2 in matcher.get_opcodes()]


def char_segments(old: str, new: str) -> tuple[list[Segment], list[Segment]]:
    """(old side, new side): equal runs, and the characters deleted from old / inserted in new."""
    left, right = [], []
    for op, a, b in char_ops(old, new):
        if op == "equal":
            left.append(Segment("equal", a))
            right.append(Segment("equal", b))
            continue
        if a:
            left.append(Segment("delete", a))
        if b:
            right.append(Segment("insert", b))
    return left, right


def paragraph_rows(old: str, new: str) -> list[ParagraphRow]:
    a, b = old.split("\n"), new.split("\n")
    rows = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            rows += [ParagraphRow("equal", [Segment("equal", p)], [Segment("equal", p)]) for p in a[a1:a2]]
        elif op == "replace" and a2 - a1 == b2 - b1:
            for x, y in zip(a[a1:a2], b[b1:b2]):
                left, right = char_segments(x, y)
                rows.append(ParagraphRow("changed", left, right))
        else:
            rows += [ParagraphRow("removed", old=[Segment("delete", p)]) for p in a[a1:a2]]
            rows += [ParagraphRow("added", new=[Segment("insert", p)]) for p in b[b1:b2]]
    return rows


def fold(rows: list[ParagraphRow], context: int | None) -> list[ParagraphRow]:
    """Equal paragraphs more than `context` away from any change become one folded row."""
    if context is None:
        return rows
    changed = [i for i, row in enumerate(rows) if row.kind != "equal"]
    keep = {j for i in changed for j in range(i - context, i + context + 1)}
    out: list[ParagraphRow] = []
    for i, row in enumerate(rows):
        if i in keep or row.kind != "equal":
            out.append(row)
        elif out and out[-1].kind == "folded":
            out[-1].folded += 1
        else:
            out.append(ParagraphRow("folded", folded=1))
    return out


def field_value(version: ArticleVersion, name: str, tz: ZoneInfo) -> str:
    value = getattr(version, name)
    if value is None:
        return ""
    if name == "published_at":
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if name == "tags":
        return "、".join(value)
    return str(value)


def version_diff(old: ArticleVersion, new: ArticleVersion, tz: ZoneInfo,
                 context: int | None = 2) -> VersionDiff:
    diff = VersionDiff(old, new)
    for name in DIFFED_FIELDS:
        a, b = field_value(old, name, tz), field_value(new, name, tz)
        if a != b:
            left, right = char_segments(a, b)
            diff.fields.append(FieldChange(name, left, right))
    rows = paragraph_rows(old.body_text, new.body_text)
    diff.body_changed = any(row.kind != "equal" for row in rows)
    diff.body = fold(rows, context)
    return diff


def changed_fields(old: ArticleVersion | None, new: ArticleVersion) -> list[str]:
    """Names of the content fields that differ between two versions (all of them for a first version)."""
    if old is None:
        return []
    return field_changes(old, new) + body_change(old.body_text != new.body_text, old.body_html != new.body_html)


def field_changes(old, new) -> list[str]:
    """The DIFFED_FIELDS that differ between two versions (or rows that hold those fields)."""
    return [n for n in DIFFED_FIELDS if getattr(old, n) != getattr(new, n)]


def body_change(text_changed: bool, html_changed: bool) -> list[str]:
    """How the body changed, once its text and its markup have been compared (in Python or by the
    database, which spares loading every body of a long history: queries.timeline)."""
    if text_changed:
        return ["body"]
    return ["body markup"] if html_changed else []


# --- as text ------------------------------------------------------------------------------------
def marked(old: str, new: str) -> str:
    """One line: equal runs as they are, removed characters [-…-], added ones {+…+}."""
    return "".join(a if op == "equal" else (f"[-{a}-]" if a else "") + (f"{{+{b}+}}" if b else "")
                   for op, a, b in char_ops(old, new))


def _text(segments: list[Segment] | None) -> str:
    return "".join(segment.text for segment in segments or [])


def render_text(diff: VersionDiff) -> str:
    """The diff as `portal-archive diff` prints it: a head line, the changed fields, then the body's
    paragraphs: '  ' unchanged, '- ' removed, '+ ' added, '~ ' changed, '  …' folded."""
    old, new = diff.old, diff.new
    lines = [f"version {old.version} ({old.change}, {old.valid_from:%Y-%m-%d %H:%M:%S} UTC) → "
             f"version {new.version} ({new.change}, {new.valid_from:%Y-%m-%d %H:%M:%S} UTC)"]
    lines += [f"{change.name}: {marked(_text(change.old), _text(change.new))}" for change in diff.fields]
    if not diff.body_changed:
        lines.append("body: unchanged")
        return "\n".join(lines)
    lines.append("body:")
    prefix = {"equal": "  ", "removed": "- ", "added": "+ "}
    for row in diff.body:
        if row.kind == "folded":
            lines.append("  …")
        elif row.kind == "changed":
            lines.append("~ " + marked(_text(row.old), _text(row.new)))
        else:
            lines.append(prefix[row.kind] + _text(row.old if row.kind != "added" else row.new))
    return "\n".join(lines)
