"""A deterministic, seeded replica of the portal 中国电源产业网.

Generate a site, serve it over HTTP on 127.0.0.1 in the portal's markup,
change it the way the portal changes, and read the ground truth a correct
archive must hold.
"""
from .generator import generate
from .manifest import expected_articles
from .mutate import mutate
from .render import Response, render_article, render_list, render_not_found, route
from .server import ReplicaServer
from .site import CHANNELS, SITE_NAME, Channel
from .state import Article, SiteState, load_state, save_state

__all__ = [
    "Article", "CHANNELS", "Channel", "ReplicaServer", "Response", "SITE_NAME", "SiteState",
    "expected_articles", "generate", "load_state", "mutate", "render_article", "render_list",
    "render_not_found", "route", "save_state",
]
