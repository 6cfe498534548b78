"""Republished copies, linked: inside an archive batch's transaction.

Identity is the portal's aid, whatever URL form led to the page; each content
is fingerprinted when the page is read (pipeline.reading.fingerprint).
Republished copies are found through indexes (exact body hash, then shared
paragraph hashes) and confirmed by text similarity; the copy points to the
earliest-published article of the story.
"""
from __future__ import annotations

import math

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from pipeline.archive.models import Article, ArticleVersion, ParagraphFingerprint
from pipeline.reading.fingerprint import CANDIDATE_PARAGRAPH_SHARE, NEAR_DUPLICATE_SIMILARITY, similarity
from pipeline.reading.records import CleanArticle

MAX_CANDIDATES = 5


def index_paragraphs(session: Session, article: Article, hashes: list[int]) -> None:
    session.execute(delete(ParagraphFingerprint).where(ParagraphFingerprint.article_id == article.id))
    if hashes:
        session.execute(insert(ParagraphFingerprint.__table__),
                        [{"paragraph_hash": h, "article_id": article.id} for h in dict.fromkeys(hashes)])


def _candidates(session: Session, article: Article, item: CleanArticle) -> list[int]:
    exact = session.scalars(
        select(Article.id).where(Article.body_hash == item.body_hash, Article.id != article.id)
        .limit(MAX_CANDIDATES)
    ).all()
    if not item.paragraph_hashes:
        return list(exact)
    needed = max(1, math.ceil(len(item.paragraph_hashes) * CANDIDATE_PARAGRAPH_SHARE))
    near = session.execute(
        select(ParagraphFingerprint.article_id)
        .where(ParagraphFingerprint.paragraph_hash.in_(item.paragraph_hashes),
               ParagraphFingerprint.article_id != article.id)
        .group_by(ParagraphFingerprint.article_id)
        .having(func.count() >= needed)
        .limit(MAX_CANDIDATES)
    ).scalars().all()
    return list(dict.fromkeys([*exact, *near]))


def _root(article: Article) -> Article:
    seen = set()
    while article.duplicate_of is not None and article.id not in seen:
        seen.add(article.id)
        article = article.duplicate_of
    return article


def link_duplicates(session: Session, article: Article, item: CleanArticle) -> Article | None:
    """Link the article and its copies to the story's earliest article; returns that original."""
    matched = []
    for candidate_id in _candidates(session, article, item):
        candidate = session.get(Article, candidate_id)
        if candidate.body_hash == item.body_hash:
            matched.append(candidate)
            continue
        text = session.scalar(select(ArticleVersion.body_text).where(
            ArticleVersion.article_id == candidate_id, ArticleVersion.valid_to.is_(None)))
        if text is not None and similarity(text, item.body_text) >= NEAR_DUPLICATE_SIMILARITY:
            matched.append(candidate)
    if not matched:
        return None
    group = {a.id: a for m in matched for a in (m, _root(m))}
    group[article.id] = article
    original = min(group.values(), key=lambda a: a.aid)
    for member in group.values():
        if member is not original and member.duplicate_of_id != original.id:
            member.duplicate_of = original
    if original.duplicate_of_id is not None:
        original.duplicate_of = None
    # Copies that pointed at a member now point at the story's original.
    for member in list(group.values()):
        if member is original:
            continue
        for copy in session.scalars(select(Article).where(Article.duplicate_of_id == member.id)):
            copy.duplicate_of = original
    return original if original is not article else None
