"""What one look at an article found: the outcome codes of `article_checks`.

The archive writes one row per look (pipeline/writer.py); the revisit policy
learns from them (pipeline/revisit.py). A change is a change of the archived
content (its content hash), never of an ETag or a Last-Modified alone: the
portal's CMS regenerates a page whenever its related-links box changes.
"""
from __future__ import annotations

from enum import IntEnum


class Outcome(IntEnum):
    NEW = 0  # the article's first look: it entered the archive
    EDITED = 1  # the content changed: a new version
    UNCHANGED = 2  # a 200 with the same content (whatever its validators say)
    NOT_MODIFIED = 3  # a 304 to a conditional request
    TAKEN_DOWN = 4  # gone (404/410, a redirect to its channel), confirmed: a tombstone
    GONE_UNCONFIRMED = 5  # gone, not yet on enough runs to be believed
    STILL_GONE = 6  # a taken-down article, still gone
    RESTORED = 7  # a taken-down article back: a new version
    REEXTRACTED = 8  # the same page read by another method: a version, but no portal change
    FAILED = 9  # nothing learned: a failed fetch or a page that could not be read


# Looks that found the portal had changed the article (they count in articles.changes).
CHANGES = frozenset({Outcome.EDITED, Outcome.TAKEN_DOWN, Outcome.RESTORED})
# Looks at an article that was live since the previous look: the intervals the policy learns
# an article's rate of change from (a taken-down article's looks are about its return instead).
LIVE_LOOKS = frozenset({Outcome.EDITED, Outcome.UNCHANGED, Outcome.NOT_MODIFIED, Outcome.TAKEN_DOWN,
                        Outcome.GONE_UNCONFIRMED, Outcome.REEXTRACTED})

# The writer's outcome words (pipeline/versions.py) and the look they record.
BY_WRITER_OUTCOME = {
    "new": Outcome.NEW, "edited": Outcome.EDITED, "unchanged": Outcome.UNCHANGED,
    "not_modified": Outcome.NOT_MODIFIED, "taken_down": Outcome.TAKEN_DOWN,
    "gone_unconfirmed": Outcome.GONE_UNCONFIRMED, "still_gone": Outcome.STILL_GONE,
    "restored": Outcome.RESTORED, "reextracted": Outcome.REEXTRACTED,
}
