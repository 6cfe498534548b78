"""The redesigned article page: the same article in a new template.

Served for the articles a DriftPlan picks (drift.py). List pages, the home
page and the 404 page keep the reference markup. Ground truth is unchanged.

What changes against the reference layout (templates.ARTICLE):

- doctype `<!DOCTYPE html>` with `<html lang="zh-CN">`, charset declared as
  `<meta charset="gb2312" />` instead of the http-equiv form (bytes are still
  GB18030, the Content-Type header is unchanged);
- breadcrumb: `<nav class="crumbs">您的位置：<a>首页</a> &raquo; <a>{channel}</a>
  &raquo; <span>正文</span></nav>` instead of `.place` (channel = 2nd link);
- container `<article class="news-detail">` instead of `.viewbox`;
- title in `<h1 class="news-title">` instead of `.title h2`;
- date, editor and source in one meta line `<div class="news-meta">` of
  `<span>`s: `发布时间：2025年05月07日 10:35` (time only for the datetime
  style; otherwise `发布时间：2025年05月07日`), `作者：中国电源产业网` (the site,
  boilerplate like `.info .site`, not the editor), `来源：{source}`,
  `责任编辑：{editor}`, then the view counter script;
- lede in `<div class="summary">摘要：…</div>` instead of `.intro 导语:`;
- body in `<div class="news-body">`, `<p>` paragraphs without the two U+3000
  indents, closed by `<!-- /news-body -->`; no `#article-content`; absent
  altogether for `no_body` articles; special articles keep their extra markup;
- tags in `<div class="keywords">关键词：` + tag links instead of `.tags 标签:`;
- prev/next in `<div class="news-pager">` as `<p class="prev">上一篇：…</p>`
  and `<p class="next">下一篇：…</p>`;
- related list in `<aside class="news-related">`, each item
  `<li><a>{title}</a><p>{lede}</p></li>` (no `<h4>`), heading 相关阅读, link 更多;
- no share widget, no separator line.

Labels use the full-width colon (：, U+FF1A) where the reference has an
ASCII one.

Unchanged: `<title>{title}_{channel}_中国电源产业网</title>`, keywords and
description metas, `<link rel="canonical">`, the site header and footer, the
URLs, the encoding, ETag/Last-Modified behaviour.
"""
from __future__ import annotations

from . import templates as t
from .index import SiteIndex, neighbours, related
from .markup import (DESCRIPTION_LIMIT, attr, body_paragraphs, encode_article, header,
                     related_href, text)
from .site import CHANNEL_BY_SLUG, parse_iso
from .state import Article

ARTICLE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="gb2312" />
<title>{title}_{channel_name}_中国电源产业网</title>
<meta name="keywords" content="{keywords}" />
<meta name="description" content="{description}" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<link rel="canonical" href="{canonical}" />
<link href="/static/css/news-2025.css" rel="stylesheet" />
</head>
<body class="page-news">
{header}<main class="container">
  <nav class="crumbs">您的位置：<a href="/">首页</a> &raquo; <a href="{channel_root}">{channel_name}</a> &raquo; <span>正文</span></nav>
  <article class="news-detail">
    <h1 class="news-title">{title}</h1>
    <div class="news-meta"><span>发布时间：{time}</span><span>作者：中国电源产业网</span><span>来源：{source}</span><span>责任编辑：{editor}</span><span class="views">阅读：<script src="/plus/count.php?view=yes&amp;aid={aid}&amp;mid=1"></script></span></div>
    <div class="summary">摘要：{lede}</div>
{content}    <div class="keywords">关键词：{tags}</div>
    <div class="news-pager"><p class="prev">上一篇：{prev}</p><p class="next">下一篇：{next}</p></div>
  </article>
  <aside class="news-related"><h3>相关阅读<a class="more" href="{channel_root}">更多</a></h3><ul>
{related}  </ul></aside>
</main>
""" + t.FOOTER

CONTENT = """    <div class="news-body">
{paragraphs}    </div><!-- /news-body -->
"""
PARAGRAPH = "<p>{text}</p>\n"
TAG_LINK = '<a href="/tags.php?/{tag}/">{tag}</a>'
CONTEXT_LINK = '<a href="{href}">{title}</a>'
NO_CONTEXT = "没有了"
RELATED_ITEM = '    <li><a href="{href}" target="_blank">{title}</a><p>{lede}</p></li>\n'


def display_date(published_at: str, style: str) -> str:
    moment = parse_iso(published_at)
    return moment.strftime("%Y年%m月%d日 %H:%M" if style == "datetime" else "%Y年%m月%d日")


def _context_link(article: Article | None) -> str:
    if article is None:
        return NO_CONTEXT
    return CONTEXT_LINK.format(href=attr(article.path), title=text(article.title))


def render_article(article: Article, index: SiteIndex) -> bytes:
    channel = CHANNEL_BY_SLUG[article.channel]
    prev_article, next_article = neighbours(index, article)
    related_items = "".join(
        RELATED_ITEM.format(href=attr(related_href(article, other)),
                            title=text(other.title), lede=text(other.lede))
        for other in related(index, article))
    content = "" if article.defect == "no_body" else CONTENT.format(
        paragraphs=body_paragraphs(article, PARAGRAPH))
    page = ARTICLE.format(
        title=text(article.title), channel_name=channel.name, channel_root=channel.root,
        keywords=attr(",".join(article.tags)), description=attr(article.lede[:DESCRIPTION_LIMIT]),
        canonical=attr(article.path), header=header(channel),
        time=display_date(article.published_at, article.date_style), aid=article.aid,
        lede=text(article.lede), content=content, editor=text(article.editor),
        source=text(article.source), tags=" ".join(TAG_LINK.format(tag=text(tag)) for tag in article.tags),
        prev=_context_link(prev_article), next=_context_link(next_article), related=related_items,
    )
    return encode_article(page, article)
