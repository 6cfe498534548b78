"""The HTML pages: server-rendered, complete without JavaScript.

Query parameters are read leniently (a bad page number is page 1, a bad date
is no date): a person editing a URL gets a page, not a validation error. The
one exception is a position in an article's timeline (`before`): shown some
other run of versions instead, a reader citing the page would cite the wrong
ones, so a malformed one is a 400 and one the article does not have a 404.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path as FilePath
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from pipeline.archive import queries
from pipeline.archive.diff import version_diff
from pipeline.archive.search import SCAN_WINDOW, snippet
from pipeline.archive.summary import budget_report, edits_of
from pipeline.archive.versions import raw_page_bytes
from web import charts
from web.feeds import change_link, changes_atom
from web.readonly import reading
from web.security import RAW_CSP, decode_raw, safe_href, sanitized_body


def _context(request: Request) -> dict:
    state = request.app.state
    return {"tz": state.tz, "site_name": state.profile.site_name,
            "url_with": lambda **changes: page_url(request, **changes)}


TEMPLATES = Jinja2Templates(directory=FilePath(__file__).parent / "templates", context_processors=[_context])
router = APIRouter(include_in_schema=False)

CHART_DAYS = (30, 90, 365)
RUN_CHART_RUNS = 40
SERIES_COLORS = {"new": "#1565c0", "edited": "#f9a825", "taken down": "#c62828", "restored": "#2e7d32",
                 "quarantined": "#6a1b9a", "failed fetches": "#5d4037"}
STATUS_LABELS = {"live": "live", "taken_down": "taken down", "edited": "edited at least once",
                 "duplicate": "duplicate"}


def _utc(moment: datetime | None) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC" if moment else "—"


def _portal(moment: datetime | None, tz, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone(tz).strftime(fmt) if moment else "—"


def _duration(run) -> str:
    if not run.finished_at:
        return "—"
    seconds = max(0, int((run.finished_at - run.started_at).total_seconds()))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def _health(health) -> list[tuple[str, str]]:
    """A run's health figures, one level of nesting flattened (coverage.title), rates as percentages."""
    if not isinstance(health, dict):
        return []
    out = []
    for key, value in health.items():
        if isinstance(value, dict):
            out += [(f"{key}.{k}", _figure(v)) for k, v in value.items()]
        else:
            out.append((str(key), _figure(value)))
    return out


def _figure(value) -> str:
    if isinstance(value, float):
        return f"{value:.1%}" if 0 <= value <= 1 else f"{value:,.2f}"
    return str(value)


def _budget(run) -> list[tuple[str, str]]:
    """A run's request budget in figures: what it was allowed, what it spent on what, what it had
    to leave for lack of budget, and what its revisit plan expected."""
    report = budget_report(run.stats or {})
    out = [("allowed", "no limit" if run.allowance is None else f"{run.allowance:,}")]
    out += [(f"spent on {kind}", f"{n:,}") for kind, n in sorted(report["spent"].items())]
    out += [(f"not sent: {kind}", f"{n:,}") for kind, n in sorted(report["left"].items()) if n]
    plan = report["revisit"]
    for key, label in (("planned", "revisits planned"), ("probes_planned", "gap probes planned"),
                       ("expected_versions", "new versions expected"),
                       ("left_for_budget", "revisits left for lack of budget"),
                       ("left_expected_versions", "new versions expected among them"),
                       ("floor_overdue_left", "past the revisit floor, left unseen")):
        if plan.get(key):
            out.append((label, _figure(plan[key]) if isinstance(plan[key], float) else f"{plan[key]:,}"))
    return out


TEMPLATES.env.filters.update(utc=_utc, portal=_portal, duration=_duration, health=_health, budget=_budget)


def _int(value: str | None, default: int, low: int = 1, high: int = queries.MAX_PAGE) -> int:
    try:
        return min(max(int(value), low), high)
    except (TypeError, ValueError):
        return default


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def page_url(request: Request, **changes) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    params.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        params.pop(key, None)
    query = urlencode({k: v for k, v in params.items() if v != ""})
    return request.url.path + (f"?{query}" if query else "")


def render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)


def not_found(request: Request, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=404, title="Not found", message=message)


def bad_request(request: Request, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=400, title="Bad request", message=message)


def _version_number(value: str | None) -> int | None:
    """A version number as a query parameter gives it; None when absent or empty, ValueError when not one."""
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise ValueError(f"{value[:40]!r} is not a version number")
    return int(value)


@router.get("/", response_class=HTMLResponse)
def articles(request: Request):
    params = request.query_params
    status = params.get("status") if params.get("status") in queries.STATUSES else None
    flt = queries.ArticleFilter(q=(params.get("q") or "").strip()[:200] or None,
                                channel=params.get("channel") or None,
                                published_from=_date(params.get("from")),
                                published_to=_date(params.get("to")), status=status)
    if flt.q:
        aid = request.app.state.profile.aid_of(flt.q)
        if aid is not None and flt.q.startswith(("http://", "https://", "/")):
            return RedirectResponse(f"/articles/{aid}", status_code=303)
    page = _int(params.get("page"), 1)
    tz = request.app.state.tz
    with reading(request.app.state.engine) as session:
        found = queries.list_articles(session, flt, tz, page, counts=request.app.state.counts)
        channel_list = request.app.state.counts.channels(session)
    snippets = {r.aid: snippet(r.excerpt, flt.q) for r in found.items if r.excerpt is not None}
    return render(request, "articles.html", title="Articles", found=found, flt=flt, snippets=snippets,
                  channels=channel_list, statuses=STATUS_LABELS, scan_window=SCAN_WINDOW)


@router.get("/articles/{aid}", response_class=HTMLResponse)
def article(request: Request, aid: int):
    try:
        before = _version_number(request.query_params.get("before"))
    except ValueError as exc:
        return bad_request(request, f"before: {exc}")
    with reading(request.app.state.engine) as session:
        try:
            view = queries.article_view(session, aid, before)
        except queries.NotFound as exc:
            return not_found(request, str(exc))
        return render(request, "article.html", title=view.current.title, view=view, version=view.current,
                      body=sanitized_body(view.current.body_html), href=safe_href(view.article.canonical_url))


@router.get("/articles/{aid}/versions/{number}", response_class=HTMLResponse)
def version(request: Request, aid: int, number: int):
    with reading(request.app.state.engine) as session:
        try:
            found_article = queries.article_by_aid(session, aid)
            found = queries.version_of(session, found_article, number)
        except queries.NotFound as exc:
            return not_found(request, str(exc))
        return render(request, "version.html", title=f"{found.title} (version {found.version})",
                      article=found_article, version=found, body=sanitized_body(found.body_html),
                      href=safe_href(found.canonical_url))


@router.get("/articles/{aid}/diff", response_class=HTMLResponse)
def diff(request: Request, aid: int):
    params = request.query_params
    with reading(request.app.state.engine) as session:
        try:
            found_article = queries.article_by_aid(session, aid)
            last = found_article.current_version
            to = _int(params.get("to"), last, high=last)
            from_ = _int(params.get("from"), max(1, to - 1), high=last)
            old = queries.version_of(session, found_article, from_)
            new = queries.version_of(session, found_article, to)
            current = new if to == last else queries.version_of(session, found_article, last)
        except queries.NotFound as exc:
            return not_found(request, str(exc))
        full = params.get("full") == "1"
        result = version_diff(old, new, request.app.state.tz, context=None if full else 2)
        return render(request, "diff.html", title=f"{current.title}: version {from_} → {to}",
                      article=found_article, current=current, versions=queries.version_numbers(session, found_article),
                      diff=result, full=full)


@router.get("/changes", response_class=HTMLResponse)
def changes(request: Request):
    kinds = tuple(k for k in request.query_params.getlist("kind") if k in queries.CHANGE_KINDS)
    page = _int(request.query_params.get("page"), 1)
    with reading(request.app.state.engine) as session:
        found = queries.changes(session, kinds, page, counts=request.app.state.counts)
    return render(request, "changes.html", title="Changes", found=found, kinds=kinds,
                  links={(r.aid, r.version): change_link("", r) for r in found.items})


@router.get("/feeds/changes.atom")
def changes_feed(request: Request):
    with reading(request.app.state.engine) as session:
        found = queries.changes(session, queries.CHANGE_KINDS, 1, 100, counts=request.app.state.counts)
    base = str(request.base_url).rstrip("/")
    return Response(changes_atom(found.items, base, request.app.state.profile.site_name),
                    media_type="application/atom+xml; charset=utf-8")


@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request):
    days = _int(request.query_params.get("days"), 90, low=7, high=3650)
    page = _int(request.query_params.get("page"), 1)
    tz = request.app.state.tz
    with reading(request.app.state.engine) as session:
        found = queries.runs(session, page)
        recent = found.items if page == 1 else queries.runs(session, 1).items
        published = queries.published_per_day(session, tz, days)
        edits = queries.changes_per_day(session, "edited", days)
        totals = request.app.state.counts.totals(session)
    columns = [(f"#{r.id} {r.started_at:%m-%d %H:%M}", r.status, [
        ("new", r.articles_new or 0), ("edited", edits_of(r)), ("taken down", r.taken_down or 0),
        ("restored", r.restored or 0), ("quarantined", r.quarantined or 0),
        ("failed fetches", r.fetch_failures or 0)]) for r in reversed(recent[:RUN_CHART_RUNS])]
    figures = {
        "published": charts.bar_chart(f"Articles published per day (portal time), last {days} days",
                                      [(d.isoformat(), n) for d, n in published]),
        "edits": charts.bar_chart(f"Edits per day (UTC, when the archive saw them), last {days} days",
                                  [(d.isoformat(), n) for d, n in edits], color="#f9a825"),
        "outcomes": charts.stacked_chart("Run outcomes: what each run wrote, and its status", columns,
                                         SERIES_COLORS),
    }
    return render(request, "runs.html", title="Crawl runs", found=found, figures=figures, days=days,
                  chart_days=CHART_DAYS, totals=totals, series=SERIES_COLORS,
                  status_colors=charts.STATUS_COLORS, edits_of=edits_of)


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine(request: Request):
    page = _int(request.query_params.get("page"), 1)
    with reading(request.app.state.engine) as session:
        found = queries.quarantine(session, page)
    return render(request, "quarantine.html", title="Quarantine", found=found)


@router.get("/raw/{raw_id}", response_class=HTMLResponse)
def raw(request: Request, raw_id: int):
    with reading(request.app.state.engine) as session:
        try:
            page = queries.raw_page(session, raw_id)
        except queries.NotFound as exc:
            return not_found(request, str(exc))
        source = decode_raw(raw_page_bytes(page), page.encoding)
        return render(request, "raw.html", title=f"Raw page {raw_id}", page=page, source=source)


@router.get("/raw/{raw_id}/page")
def raw_document(request: Request, raw_id: int):
    """The page as fetched, for the sandboxed frame: the sandbox CSP forbids scripts even opened directly."""
    with reading(request.app.state.engine) as session:
        try:
            page = queries.raw_page(session, raw_id)
        except queries.NotFound as exc:
            return Response(str(exc), status_code=404, media_type="text/plain; charset=utf-8")
        text = decode_raw(raw_page_bytes(page), page.encoding)
    return Response(text, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": RAW_CSP, "X-Frame-Options": "SAMEORIGIN"})


@router.get("/api", response_class=HTMLResponse)
def api_index(request: Request):
    spec = request.app.openapi()
    endpoints = [(path, op.get("summary", ""), [p["name"] for p in op.get("parameters", [])])
                 for path, ops in spec["paths"].items() for method, op in ops.items() if method == "get"]
    return render(request, "api.html", title="JSON API", endpoints=endpoints)


@router.get("/favicon.ico")
def favicon():
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/healthz")
def healthz():
    return Response("ok\n", media_type="text/plain")
