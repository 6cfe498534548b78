"""Turn the portal's bytes into text without ever producing mojibake.

The portal declares gb2312 but serves GB18030 (characters such as U+2014 are
outside GB2312), so the whole GB family decodes as GB18030. Decoding is
strict: bytes that are not valid in the charset raise UndecodablePage, and the
page is quarantined instead of archived with replacement characters.
"""
from __future__ import annotations

import re

META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.I)
HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-]+)", re.I)


class UndecodablePage(ValueError):
    pass


def declared_charset(body: bytes, content_type: str | None) -> str | None:
    match = META_CHARSET.search(body[:4096])
    if match:
        return match.group(1).decode("ascii").lower()
    if content_type:
        found = HEADER_CHARSET.search(content_type)
        if found:
            return found.group(1).lower()
    return None


def decode_page(body: bytes, content_type: str | None, gb_family: tuple[str, ...]) -> tuple[str, str]:
    """(text, encoding used). UndecodablePage when no strict decoding works.

    Valid UTF-8 with non-ASCII characters is taken as UTF-8 whatever is
    declared: GB18030 text is practically never valid UTF-8, while UTF-8 text
    often decodes as (wrong) GB18030, so this order is the one that cannot
    produce mojibake from a mislabelled page.
    """
    if not body.isascii():
        try:
            return body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    declared = declared_charset(body, content_type) or "gb18030"
    encoding = "gb18030" if declared in gb_family else declared
    try:
        return body.decode(encoding), encoding
    except LookupError:
        raise UndecodablePage(f"unknown declared charset {declared!r}") from None
    except UnicodeDecodeError as exc:
        raise UndecodablePage(
            f"invalid {encoding} bytes at offset {exc.start}: {body[exc.start:exc.start + 4]!r}"
        ) from None
