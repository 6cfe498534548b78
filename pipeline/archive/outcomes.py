"""The archive's words for what happened, as enums: a version's kind of change, an article's
status, what writing an item did, and what one look at an article found.

A change is a change of the archived content (its content hash), never of an
ETag or a Last-Modified alone: the portal's CMS regenerates a page whenever its
related-links box changes. The writer (pipeline/archive/writer.py) records
one look per article request in `article_checks`; the revisit policy learns
from them (pipeline/archive/revisit.py).
"""
from __future__ import annotations

from enum import IntEnum, StrEnum


class Change(StrEnum):
    """article_versions.change: why a version exists."""

    CREATED = "created"
    EDITED = "edited"  # the portal changed it
    REEXTRACTED = "reextracted"  # the same page read by another method: no portal change
    TAKEN_DOWN = "taken_down"
    RESTORED = "restored"


class Status(StrEnum):
    """articles.status."""

    LIVE = "live"
    TAKEN_DOWN = "taken_down"


class Written(StrEnum):
    """What writing one item did (counted as archive/<value> in a run's stats)."""

    NEW = "new"
    EDITED = "edited"
    REEXTRACTED = "reextracted"
    TAKEN_DOWN = "taken_down"
    RESTORED = "restored"
    UNCHANGED = "unchanged"  # a 200 with the same content
    NOT_MODIFIED = "not_modified"  # a 304
    GONE_UNCONFIRMED = "gone_unconfirmed"  # gone, on fewer runs than takedown_confirmations
    STILL_GONE = "still_gone"
    GONE_UNKNOWN = "gone_unknown"  # gone, and never archived (a probe's miss)
    NOT_MODIFIED_UNKNOWN = "not_modified_unknown"
    QUARANTINED = "quarantined"
    FETCH_FAILED = "fetch_failed"
    # A capture older than what the archive last saw (a WARC import): a version put in its place
    # in the timeline, or the start of the version it agrees with moved back to it.
    HISTORY = "history"
    EARLIER = "earlier"


# Outcomes that wrote a version, and those that saw an article's content (a version or the same).
WROTE_VERSION = (Written.NEW, Written.EDITED, Written.REEXTRACTED, Written.TAKEN_DOWN, Written.RESTORED)
SAW_CONTENT = (Written.NEW, Written.EDITED, Written.REEXTRACTED, Written.RESTORED, Written.UNCHANGED,
               Written.NOT_MODIFIED)


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

# What writing an item did, and the look it records.
LOOK_OF = {
    Written.NEW: Outcome.NEW, Written.EDITED: Outcome.EDITED, Written.UNCHANGED: Outcome.UNCHANGED,
    Written.NOT_MODIFIED: Outcome.NOT_MODIFIED, Written.TAKEN_DOWN: Outcome.TAKEN_DOWN,
    Written.GONE_UNCONFIRMED: Outcome.GONE_UNCONFIRMED, Written.STILL_GONE: Outcome.STILL_GONE,
    Written.RESTORED: Outcome.RESTORED, Written.REEXTRACTED: Outcome.REEXTRACTED,
    Written.QUARANTINED: Outcome.FAILED, Written.FETCH_FAILED: Outcome.FAILED,
}
