"""The web archive browser: a read-only, server-rendered view of the archive, and its JSON API.

`portal-archive web` calls `serve`; tests and the benchmark call `create_app`.
"""
from web.app import create_app, serve
from web.security import WebError

__all__ = ["WebError", "create_app", "serve"]
