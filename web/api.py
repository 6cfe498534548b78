"""The JSON API: the same data as the pages, described by the OpenAPI document at /api/openapi.json."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from pipeline.archive import queries
from pipeline.archive.diff import Segment, changed_fields, version_diff
from pipeline.archive.models import ArticleVersion
from pipeline.archive.summary import RunSummary
from pipeline.archive.search import snippet
from web.readonly import reading
from web.security import sanitized_body

router = APIRouter(prefix="/api", tags=["archive"])

MAX_ID = 2**63 - 1  # the archive's BIGINT
MAX_VERSION = 2**31 - 1
Status = Literal["live", "taken_down", "edited", "duplicate"]
Change = Literal["created", "edited", "reextracted", "taken_down", "restored"]
FeedChange = Literal["edited", "taken_down", "restored"]


class Problem(BaseModel):
    detail: str


NOT_FOUND = {404: {"model": Problem, "description": "No such article, version, run or page."}}


class ArticleSummary(BaseModel):
    aid: int
    url: str
    title: str
    channel: str
    published_at: datetime = Field(description="Publication time, in the portal's zone.")
    status: Literal["live", "taken_down"]
    versions: int
    edits: int
    restorations: int
    duplicate_of: int | None = Field(description="aid of the original, for a republished copy.")
    last_changed_at: datetime
    snippet: str | None = Field(None, description="Text around the first hit, for a search.")


class ArticlePage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[ArticleSummary]
    more: bool = Field(False, description="The total was counted only up to a limit (PostgreSQL, a search): "
                                          "more than `total` articles match.")
    bounded: bool = Field(False, description="A search of single Chinese characters alone, which no index holds: "
                                             "the matches among the newest articles only (see the README).")
    ignored_query: bool = Field(False, description="`q` held no letters, digits or Chinese characters (punctuation "
                                                   "and blanks only separate words): nothing was searched, and the "
                                                   "list is what the other filters give.")


class ArticleRef(BaseModel):
    aid: int
    title: str
    url: str
    status: Literal["live", "taken_down"]


class VersionSummary(BaseModel):
    version: int
    change: Change
    valid_from: datetime = Field(description="When the archive first saw this content (UTC).")
    valid_to: datetime | None = Field(description="When it stopped being current; null while current.")
    fetched_at: datetime
    crawl_run_id: int
    raw_page_id: int
    content_hash: str
    title: str
    changed_fields: list[str] = Field(description="Fields that differ from the previous version.")


class VersionDetail(VersionSummary):
    url: str
    channel: str
    published_at: datetime
    lede: str | None
    body_text: str
    body_html: str = Field(description="The stored body HTML, sanitized again with the archive's allow-list.")
    editor: str | None
    source: str | None
    origin_source: str | None
    tags: list[str]
    extraction: str


class ArticleDetail(BaseModel):
    aid: int
    url: str
    channel: str
    status: Literal["live", "taken_down"]
    first_seen_at: datetime
    last_checked_at: datetime
    last_changed_at: datetime
    current_version: int
    duplicate_of: ArticleRef | None
    duplicates: list[ArticleRef]
    current: VersionDetail
    versions: list[VersionSummary] = Field(description=(
        f"The newest versions (at most {queries.TIMELINE_PAGE}), oldest first; `older_versions` fetches "
        "the ones before them."))
    older_versions: str | None = Field(description=(
        "Path of the next page of older versions (`/api/articles/{aid}/versions?before=N`); "
        "null when `versions` starts at version 1."))


class VersionPage(BaseModel):
    total: int = Field(description="How many versions the article has (they are numbered 1..total).")
    before: int | None = Field(description="The page holds versions before this one; null: the newest.")
    limit: int
    items: list[VersionSummary] = Field(description="Consecutive versions, oldest first.")
    older: int | None = Field(description="`before` of the next older page; null when `items` starts at version 1.")
    newer: int | None = Field(description=(
        "`before` of the next newer page; null when `items` ends at the current version."))


class DiffSegment(BaseModel):
    op: Literal["equal", "delete", "insert"]
    text: str


class FieldDiff(BaseModel):
    field: str
    old: list[DiffSegment]
    new: list[DiffSegment]


class ParagraphDiff(BaseModel):
    kind: Literal["equal", "changed", "removed", "added", "folded"]
    old: list[DiffSegment] | None
    new: list[DiffSegment] | None
    folded: int = Field(description="For a folded row: how many unchanged paragraphs it stands for.")


class VersionDiffOut(BaseModel):
    aid: int
    from_version: int
    to_version: int
    from_change: Change
    to_change: Change
    fields: list[FieldDiff]
    body_changed: bool
    body: list[ParagraphDiff]


class ChangeOut(BaseModel):
    aid: int
    version: int
    change: FeedChange
    at: datetime
    title: str
    channel: str
    crawl_run_id: int


class ChangePage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[ChangeOut]


class RunPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[RunSummary]


class QuarantineOut(BaseModel):
    id: int
    created_at: datetime
    crawl_run_id: int
    url: str
    aid: int | None
    reason: str
    http_status: int | None
    raw_page_id: int | None


class QuarantinePage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[QuarantineOut]


class ChannelOut(BaseModel):
    name: str
    articles: int


def _tz(request: Request) -> ZoneInfo:
    return request.app.state.tz


def _missing(exc: queries.NotFound) -> HTTPException:
    return HTTPException(status_code=404, detail=str(exc))


def _iso_day(value):
    """A day as the schema says (`YYYY-MM-DD`): pydantic would also take a number as a Unix time."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day), WithJsonSchema({"type": "string", "format": "date"})]
Page = Query(1, ge=1, le=queries.MAX_PAGE)
PerPage = Query(queries.DEFAULT_PER_PAGE, ge=1, le=200)
Aid = Path(ge=1, le=MAX_ID, description="The portal's article id.")
Before = Query(None, ge=2, le=MAX_VERSION, description=(
    "Versions before this one (default: the newest). An article of N versions takes 2..N+1; "
    "beyond is a 404."))
Limit = Query(queries.TIMELINE_PAGE, ge=1, le=200, description="Versions a page holds.")


@router.get("/articles", response_model=ArticlePage, summary="Articles, newest first, filtered and searched")
def list_articles(request: Request,
                  q: str | None = Query(None, max_length=200, description=(
                      "Search of the current versions (光伏逆变器, 储能 PV): every Chinese run must occur as a substring, "
                      "every Latin word or number as a whole word; blanks and punctuation separate them. "
                      "Single Chinese characters alone search the newest articles only (`bounded`).")),
                  channel: str | None = Query(None, max_length=50),
                  published_from: IsoDay | None = Query(None, description="First publication day (portal time)."),
                  published_to: IsoDay | None = Query(None, description="Last publication day (portal time)."),
                  status: Status | None = None, page: int = Page, per_page: int = PerPage):
    flt = queries.ArticleFilter(q=q, channel=channel, published_from=published_from,
                                published_to=published_to, status=status)
    tz = _tz(request)
    with reading(request.app.state.engine) as session:
        found = queries.list_articles(session, flt, tz, page, per_page, counts=request.app.state.counts)
    items = [ArticleSummary(
        aid=r.aid, url=r.url, title=r.title, channel=r.channel, published_at=r.published_at.astimezone(tz),
        status=r.status, versions=r.current_version, edits=r.edits, restorations=r.restorations,
        duplicate_of=r.duplicate_of, last_changed_at=r.last_changed_at,
        snippet="".join(text for text, _ in snippet(r.excerpt, q)) if r.excerpt is not None else None,
    ) for r in found.items]
    return ArticlePage(total=found.total, page=page, per_page=per_page, items=items, bounded=found.bounded,
                       more=found.more, ignored_query=found.ignored_query)


def version_summary(version: ArticleVersion | queries.TimelineEntry, changed: list[str]) -> dict:
    return dict(version=version.version, change=version.change, valid_from=version.valid_from,
                valid_to=version.valid_to, fetched_at=version.fetched_at, crawl_run_id=version.crawl_run_id,
                raw_page_id=version.raw_page_id, content_hash=version.content_hash, title=version.title,
                changed_fields=changed)


def version_detail(version: ArticleVersion, changed: list[str], tz: ZoneInfo) -> VersionDetail:
    return VersionDetail(
        **version_summary(version, changed), url=version.canonical_url, channel=version.channel,
        published_at=version.published_at.astimezone(tz), lede=version.lede, body_text=version.body_text,
        body_html=str(sanitized_body(version.body_html)), editor=version.editor, source=version.source,
        origin_source=version.origin_source, tags=list(version.tags or []), extraction=version.extraction)


def _ref(ref: queries.ArticleRef) -> ArticleRef:
    return ArticleRef(aid=ref.aid, title=ref.title, url=ref.url, status=ref.status)


@router.get("/articles/{aid}", response_model=ArticleDetail, responses=NOT_FOUND,
            summary="An article: its current fields, versions, original and duplicates")
def get_article(request: Request, aid: int = Aid):
    tz = _tz(request)
    with reading(request.app.state.engine) as session:
        try:
            view = queries.article_view(session, aid)
        except queries.NotFound as exc:
            raise _missing(exc) from None
        a = view.article
        return ArticleDetail(
            aid=a.aid, url=a.canonical_url, channel=a.channel, status=a.status,
            first_seen_at=a.first_seen_at, last_checked_at=a.last_checked_at,
            last_changed_at=a.last_changed_at, current_version=a.current_version,
            duplicate_of=_ref(view.duplicate_of) if view.duplicate_of else None,
            duplicates=[_ref(d) for d in view.duplicates],
            current=version_detail(view.current, view.timeline.entries[-1].changed, tz),
            versions=[VersionSummary(**version_summary(v, v.changed)) for v in view.timeline.entries],
            older_versions=_versions_path(aid, view.timeline.older),
        )


def _versions_path(aid: int, before: int | None) -> str | None:
    return None if before is None else f"/api/articles/{aid}/versions?before={before}"


@router.get("/articles/{aid}/versions", response_model=VersionPage, responses=NOT_FOUND,
            summary="The version timeline of an article, a page at a time, newest page first")
def list_versions(request: Request, aid: int = Aid, before: int | None = Before, limit: int = Limit):
    with reading(request.app.state.engine) as session:
        try:
            found = queries.timeline(session, queries.article_by_aid(session, aid), before, limit)
        except queries.NotFound as exc:
            raise _missing(exc) from None
        return VersionPage(total=found.total, before=before, limit=limit, older=found.older, newer=found.newer,
                           items=[VersionSummary(**version_summary(v, v.changed)) for v in found.entries])


@router.get("/articles/{aid}/versions/{version}", response_model=VersionDetail, responses=NOT_FOUND,
            summary="One version of an article, all fields")
def get_version(request: Request, aid: int = Aid, version: int = Path(ge=1, le=MAX_VERSION)):
    with reading(request.app.state.engine) as session:
        try:
            article = queries.article_by_aid(session, aid)
            found = queries.version_of(session, article, version)
            previous = queries.version_of(session, article, version - 1) if version > 1 else None
        except queries.NotFound as exc:
            raise _missing(exc) from None
        return version_detail(found, changed_fields(previous, found), _tz(request))


def _segments(segments: list[Segment] | None) -> list[DiffSegment] | None:
    return None if segments is None else [DiffSegment(op=s.op, text=s.text) for s in segments]


@router.get("/articles/{aid}/diff", response_model=VersionDiffOut, responses=NOT_FOUND,
            summary="What changed between two versions: fields, paragraphs, characters")
def get_diff(request: Request, aid: int = Aid,
             from_: int | None = Query(None, alias="from", ge=1, le=MAX_VERSION,
                                       description="Older version (default: the one before `to`)."),
             to: int | None = Query(None, ge=1, le=MAX_VERSION, description="Newer version (default: current)."),
             context: int | None = Query(2, ge=0, le=1000,
                                         description="Unchanged paragraphs kept around a change; omit for 2.")):
    with reading(request.app.state.engine) as session:
        try:
            article = queries.article_by_aid(session, aid)
            to = to or article.current_version
            from_ = from_ or max(1, to - 1)
            old, new = queries.version_of(session, article, from_), queries.version_of(session, article, to)
        except queries.NotFound as exc:
            raise _missing(exc) from None
        diff = version_diff(old, new, _tz(request), context=context)
        return VersionDiffOut(
            aid=aid, from_version=old.version, to_version=new.version, from_change=old.change,
            to_change=new.change, body_changed=diff.body_changed,
            fields=[FieldDiff(field=f.name, old=_segments(f.old), new=_segments(f.new)) for f in diff.fields],
            body=[ParagraphDiff(kind=r.kind, old=_segments(r.old), new=_segments(r.new), folded=r.folded)
                  for r in diff.body])


@router.get("/changes", response_model=ChangePage, summary="Latest edits, takedowns and restorations")
def list_changes(request: Request, kind: list[FeedChange] | None = Query(None, description="Only these kinds."),
                 page: int = Page, per_page: int = PerPage):
    with reading(request.app.state.engine) as session:
        found = queries.changes(session, tuple(kind or ()), page, per_page, counts=request.app.state.counts)
    return ChangePage(total=found.total, page=page, per_page=per_page, items=[ChangeOut(
        aid=r.aid, version=r.version, change=r.change, at=r.at, title=r.title, channel=r.channel,
        crawl_run_id=r.run_id) for r in found.items])


@router.get("/runs", response_model=RunPage, summary="Crawl runs, latest first, with counts and health")
def list_runs(request: Request, page: int = Page, per_page: int = PerPage):
    with reading(request.app.state.engine) as session:
        found = queries.runs(session, page, per_page)
        return RunPage(total=found.total, page=page, per_page=per_page, items=[RunSummary.of(r) for r in found.items])


@router.get("/runs/{run_id}", response_model=RunSummary, responses=NOT_FOUND, summary="One crawl run")
def get_run(request: Request, run_id: int = Path(ge=1, le=MAX_ID)):
    with reading(request.app.state.engine) as session:
        try:
            return RunSummary.of(queries.run(session, run_id))
        except queries.NotFound as exc:
            raise _missing(exc) from None


@router.get("/quarantine", response_model=QuarantinePage, summary="Pages that could not be archived, and why")
def list_quarantine(request: Request, page: int = Page, per_page: int = PerPage):
    with reading(request.app.state.engine) as session:
        found = queries.quarantine(session, page, per_page)
        return QuarantinePage(total=found.total, page=page, per_page=per_page, items=[QuarantineOut(
            id=q.id, created_at=q.created_at, crawl_run_id=q.crawl_run_id, url=q.url, aid=q.aid,
            reason=q.reason, http_status=q.http_status, raw_page_id=q.raw_page_id) for q in found.items])


@router.get("/channels", response_model=list[ChannelOut], summary="Channels and how many articles each holds")
def list_channels(request: Request):
    with reading(request.app.state.engine) as session:
        return [ChannelOut(name=name, articles=n) for name, n in request.app.state.counts.channels(session)]
