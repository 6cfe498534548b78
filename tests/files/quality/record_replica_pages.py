"""Re-record the replica pages of the quality gate and their expected fields.

    .venv/bin/python tests/files/quality/record_replica_pages.py

Writes replica-*.html (the bytes the replica serves, GB18030 under a gb2312
label) and the `replica` entries of expected.json; the hand-written pages of
other CMS layouts (cms-*.html) and their entries are kept as they are.
"""
from __future__ import annotations

import json
from pathlib import Path

from replica import DriftPlan, expected_articles, generate, route

HERE = Path(__file__).parent
BASE = "http://portal.test"
SEED = 21
# Reference layout: every date style, tags, inner credits, a person as editor,
# an em dash in the title, the hostile special page, a page without a body.
REFERENCE = (10001, 10003, 10006, 10011, 10014, 10032, 10038)
# Redesigned layout (replica/redesign.py): other articles, same spread.
REDESIGNED = (10002, 10004, 10010, 10016, 10021, 10028, 10036, 10040, 10057, 10038)
FIELDS = ("url", "channel", "title", "published_at", "lede", "body", "editor", "source",
          "origin_source", "tags")


def main() -> None:
    state = generate(200, seed=SEED, defects={"no_body": 2}, specials={"hostile": 1})
    truth = expected_articles(state, BASE)
    path = HERE / "expected.json"
    expected = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    expected = {name: entry for name, entry in expected.items() if not name.startswith("replica-")}
    for layout, aids, drift in (("reference", REFERENCE, None), ("redesigned", REDESIGNED, DriftPlan(1.0))):
        for aid in aids:
            article = state.articles[aid]
            name = f"replica-{layout}-{aid}.html"
            (HERE / name).write_bytes(route(state, article.path, drift=drift).body)
            record = truth[aid]
            entry = {"layout": layout, "url": record["url"]}
            if record["quarantined"]:
                entry["rejected"] = "missing body"
            else:
                entry["fields"] = {k: record[k] for k in FIELDS}
            expected[name] = entry
    path.write_text(json.dumps(dict(sorted(expected.items())), ensure_ascii=False, indent=1) + "\n",
                    encoding="utf-8")


if __name__ == "__main__":
    main()
