"""The change feed as Atom (RFC 4287): the latest edits, takedowns and restorations."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from xml.etree import ElementTree as ET

from pipeline.archive.queries import ChangeRow

ATOM = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 cannot carry at all; the portal's text should never hold
# them, but a feed that fails to parse is worse than a dropped control byte.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
CHANGE_WORDS = {"edited": "edited", "taken_down": "taken down", "restored": "restored"}


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def change_link(base: str, row: ChangeRow) -> str:
    if row.change == "edited":
        return f"{base}/articles/{row.aid}/diff?from={row.version - 1}&to={row.version}"
    # The timeline shows a page of versions at a time; the page that ends at this version holds it
    # for good, whatever versions come after.
    return f"{base}/articles/{row.aid}?before={row.version + 1}#v{row.version}"


def changes_atom(rows: list[ChangeRow], base: str, site_name: str) -> bytes:
    """`base` is the browser's own address (scheme://host:port), for absolute links."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}title").text = _text(f"{site_name}: changes seen by the archive")
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"{base}/feeds/changes.atom"
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=f"{base}/feeds/changes.atom")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", href=f"{base}/changes")
    updated = max((r.at for r in rows), default=datetime(1970, 1, 1, tzinfo=timezone.utc))
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _iso(updated)
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = "portal-archive"
    for row in rows:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        what = CHANGE_WORDS.get(row.change, row.change)
        ET.SubElement(entry, f"{{{ATOM}}}title").text = _text(f"[{what}] {row.title}")
        # Stable across runs and hosts: the archive's own name for this version.
        ET.SubElement(entry, f"{{{ATOM}}}id").text = f"urn:portal-archive:article:{row.aid}:version:{row.version}"
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=change_link(base, row))
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = _iso(row.at)
        ET.SubElement(entry, f"{{{ATOM}}}category", term=row.change, label=what)
        ET.SubElement(entry, f"{{{ATOM}}}summary").text = _text(
            f"Article {row.aid} ({row.channel}) {what}: version {row.version}, seen {_iso(row.at)} by run {row.run_id}.")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
