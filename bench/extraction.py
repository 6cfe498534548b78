"""The generic fallback against trafilatura alone, on a directory of real pages.

    python -m bench.extraction trafilatura PAGE   # trafilatura 2.x with its defaults, as score.py expects
    python -m bench.extraction cost DATA_DIR      # in-process ms/page: the fallback vs trafilatura alone

`trafilatura` prints `{"body": ...}` for one page, so that
tests/files/extraction-dev/score.py can score trafilatura in the same run as
`portal-archive extract --method fallback` (README, "The fallback"). `cost`
reads every page of DATA_DIR/html/*.html.gz once with each, alternating, on
one core, and prints the mean time per page of each and their ratio.
"""
from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path


def _trafilatura(page: str) -> None:
    import trafilatura

    print(json.dumps({"body": trafilatura.extract(Path(page).read_text(encoding="utf-8"))}, ensure_ascii=False))


def _cost(data: str) -> None:
    import trafilatura

    from pipeline.reading.fallback import extract_fallback

    pages = [gzip.decompress(p.read_bytes()).decode("utf-8") for p in sorted(Path(data, "html").glob("*.html.gz"))]
    extract_fallback(pages[0], "http://dev.test/")  # imports and caches warm before timing
    trafilatura.extract(pages[0])
    fallback = alone = 0.0
    for page in pages:
        start = time.perf_counter()
        extract_fallback(page, "http://dev.test/")
        middle = time.perf_counter()
        trafilatura.extract(page)
        fallback, alone = fallback + middle - start, alone + time.perf_counter() - middle
    n = len(pages)
    print(f"{n} pages: fallback {fallback / n * 1000:.1f} ms/page, trafilatura alone {alone / n * 1000:.1f} ms/page, "
          f"ratio {fallback / alone:.2f}")


if __name__ == "__main__":
    commands = {"trafilatura": _trafilatura, "cost": _cost}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2])
