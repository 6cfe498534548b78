"""Compare main-text extractors for the fallback on the quality gate's pages (the README's table).

    .venv/bin/pip install readability-lxml gne      # the candidates the archive does not depend on
    .venv/bin/python tests/files/quality/compare_extractors.py

For each candidate, two measurements on the same pages:

- alone: the extractor's own plain text of the whole page, against the
  expected body (what it does without help);
- in the cascade: spiders/fallback.py with that extractor as its second
  stage, then the archive's cleaning, as a crawl would archive the page.

Body text is scored by character F1 (tests/quality.py); titles and dates are
read by the cascade's first stage, the same for every candidate.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import lxml.html  # noqa: E402

from pipeline.reading import fallback  # noqa: E402
from pipeline.reading.decode import decode_page  # noqa: E402
from pipeline.reading.profile import load_profile  # noqa: E402
from tests.quality import QUALITY, body_f1, pages, score_group  # noqa: E402

CANDIDATES = ("trafilatura", "readability", "gne", "none")


def _readability(doc):
    from readability import Document

    return fallback._fragment(Document(lxml.html.tostring(doc, encoding="unicode")).summary(html_partial=True))


def _gne(doc):
    from gne import GeneralNewsExtractor

    try:
        found = GeneralNewsExtractor().extract(lxml.html.tostring(doc, encoding="unicode"), with_body_html=True)
    except Exception:  # gne raises when it finds no text at all
        return None
    return fallback._fragment(found.get("body_html"))


# The candidates the archive does not depend on, plugged into the fallback's cascade for the comparison.
fallback.ENGINES.update(readability=_readability, gne=_gne)
fallback.ENGINE_PACKAGES.update(readability="readability-lxml", gne="gne")
GROUPS = (("redesigned", "auto"), ("other", "auto"), ("reference", "fallback"))


def alone(engine: str, text: str) -> str:
    """The extractor's plain text of the whole page, with its usual settings."""
    if engine == "trafilatura":
        import trafilatura

        return trafilatura.extract(text, favor_precision=True, include_comments=False) or ""
    if engine == "readability":
        import lxml.html
        from readability import Document

        summary = lxml.html.fromstring(Document(text).summary(html_partial=True))
        return "\n".join(t.strip() for t in summary.itertext() if t.strip())
    if engine == "gne":
        from gne import GeneralNewsExtractor

        try:
            return GeneralNewsExtractor().extract(text)["content"]
        except Exception:
            return ""
    return ""


def installed(engine: str) -> bool:
    try:
        fallback.extractor_name(engine)
    except Exception:
        return False
    return True


def main() -> None:
    profile = load_profile("cpsia")
    rows = []
    for engine in CANDIDATES:
        if not installed(engine):
            print(f"{engine}: not installed, skipped", file=sys.stderr)
            continue
        fallback.DEFAULT_ENGINE = engine
        cells = [engine if engine == "none" else fallback.extractor_name(engine)]
        for layout, method in GROUPS:
            entries = {n: e for n, e in pages(layout).items() if "fields" in e}
            if engine != "none" and layout != "reference":
                raw = [body_f1(alone(engine, decode_page((QUALITY / n).read_bytes(), None, profile.gb_family)[0]),
                               e["fields"]["body"]) for n, e in entries.items()]
                raw_f1 = f"{sum(raw) / len(raw):.3f}"
            else:
                raw_f1 = "–"
            started = time.perf_counter()
            group = score_group(profile, layout, method)
            per_page = (time.perf_counter() - started) / len(group.pages) * 1000
            cells.append(f"{raw_f1} / {group.mean_f1:.3f} (min {group.min_f1:.3f}), exact {group.share('body'):.0%}, "
                         f"no-body pages rejected: {'yes' if group.rejections_right else 'no'}, {per_page:.0f} ms")
        rows.append(cells)
    fallback.DEFAULT_ENGINE = "trafilatura"
    print("| extractor | replica, redesigned layout | other CMS layouts | reference layout (forced fallback) |")
    print("| --- | --- | --- | --- |")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    print("\ncells: body F1 of the extractor alone / in the cascade (lowest page), share of bodies exactly "
          "right, whether the pages without a body were rejected, time per page")


if __name__ == "__main__":
    main()
