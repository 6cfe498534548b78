"""Layout drift: which articles the portal serves in its redesigned markup.

A redesign rolls out page by page, so a share of articles switches while the
rest keep the reference layout. The choice is a pure function of (seed, aid):
stable across requests, restarts and mutation rounds, and independent of
every other article.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class DriftPlan:
    share: float  # 0..1, the expected fraction of articles redesigned
    seed: int = 1

    def __post_init__(self):
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"drift share must be within 0..1, not {self.share}")

    def applies(self, aid: int) -> bool:
        # A hash, not random.Random: one call per page render stays cheap.
        digest = hashlib.sha256(f"drift:{self.seed}:{aid}".encode("ascii")).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.share
