"""A deterministic, seeded replica of the portal 中国电源产业网.

Generate a site, serve it over HTTP on 127.0.0.1 in the portal's markup,
change it the way the portal changes, and read the ground truth a correct
archive must hold. Opt-in: special pages (generate's `specials`), fault mode,
layout drift and shifting lists (ReplicaServer's `faults`, `drift`, `shift`),
a static build for nginx (build_static), and live mode (LivePortal), which
changes the site over real seconds and records every version for
version_recall.
"""
from .drift import DriftPlan
from .faults import ALL_TRANSIENT, FaultPlan
from .generator import generate
from .live import LivePlan, LivePortal, load_history, version_recall
from .manifest import expected_articles
from .mutate import mutate
from .render import Response, render_article, render_list, render_not_found, route
from .server import ReplicaServer
from .shift import ShiftPlan
from .site import CHANNELS, SITE_NAME, Channel
from .specials import SPECIAL_KINDS
from .state import Article, SiteState, load_state, save_state
from .static import build_static

__all__ = [
    "ALL_TRANSIENT", "Article", "CHANNELS", "Channel", "DriftPlan", "FaultPlan", "LivePlan",
    "LivePortal", "ReplicaServer", "Response", "SITE_NAME", "SPECIAL_KINDS", "ShiftPlan", "SiteState",
    "build_static", "expected_articles", "generate", "load_history", "load_state", "mutate",
    "render_article", "render_list", "render_not_found", "route", "save_state", "version_recall",
]
