"""revisit policy and request budget: every check's outcome, the learned model, requests per run

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

The fixed revisit tiers gave way to a policy that learns from what each look
at an article found (pipeline/policy.py). It needs three things here:

- `article_checks`: one compact row per look (the article, the run, when, the
  seconds since the previous successful look, an outcome code): most rows say
  "unchanged" (a 304 or the same content), and those are most of what the
  policy learns from. An existing archive starts with none: its history
  before this revision is known only as versions, not as looks.
- `articles.changes`: how many looks found the portal had changed the article
  (edits, takedowns, returns), filled here from the versions an existing
  archive already holds. With first_seen_at and last_checked_at it is all
  the policy needs of an article's past to rank it.
- `articles.born_at`: when the article was published, as the archive could
  tell when it first saw it (pipeline/revisit.py, `born`); filled here from
  the first version's publication time and the first sighting.
- `revisit_model`: one row with the evidence summed so far and the model
  fitted on it.

And for the request budget, `crawl_runs.requests` (requests a run sent) and
`crawl_runs.allowance` (what the budget allowed it): the ledger that tells how
much of the last 24 hours' budget is spent.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('article_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('crawl_run_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('interval', sa.BigInteger(), nullable=True),
    sa.Column('outcome', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_article_checks_article_id_articles')),
    sa.ForeignKeyConstraint(['crawl_run_id'], ['crawl_runs.id'], name=op.f('fk_article_checks_crawl_run_id_crawl_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_article_checks'))
    )
    with op.batch_alter_table('article_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_article_checks_article_id'), ['article_id'], unique=False)

    op.create_table('revisit_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('checks_seen', sa.BigInteger(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('model', sa.JSON(), nullable=False),
    sa.Column('fitted_on', sa.BigInteger(), nullable=False),
    sa.Column('fitted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revisit_model'))
    )
    # Plain ADD COLUMN on both databases: a batch-mode rebuild of `articles` is not needed (and the
    # search triggers live on article_versions, which is not touched).
    op.add_column('articles', sa.Column('changes', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE articles SET changes = (SELECT count(*) FROM article_versions v "
               "WHERE v.article_id = articles.id AND v.change IN ('edited', 'taken_down', 'restored'))")
    op.add_column('articles', sa.Column('born_at', sa.DateTime(), nullable=True))
    # born = the first sighting, kept between the first version's publication time and a day after
    # it (the day a page names): the same rule as pipeline.archive.revisit.born, in SQL. Both databases
    # store UTC; SQLite compares its timestamps as text, which orders them correctly.
    first_published = ("(SELECT v.published_at FROM article_versions v "
                       "WHERE v.article_id = articles.id AND v.version = 1)")
    dialect = op.get_context().dialect.name
    day_after = (f"datetime({first_published}, '+1 day')" if dialect == "sqlite"
                 else f"({first_published} + interval '1 day')")
    op.execute(f"UPDATE articles SET born_at = CASE WHEN first_seen_at < {first_published} THEN {first_published} "
               f"WHEN first_seen_at > {day_after} THEN {day_after} ELSE first_seen_at END")
    op.add_column('crawl_runs', sa.Column('requests', sa.Integer(), nullable=True))
    op.add_column('crawl_runs', sa.Column('allowance', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.drop_column('allowance')
        batch_op.drop_column('requests')
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_column('born_at')
        batch_op.drop_column('changes')
    op.drop_table('revisit_model')
    with op.batch_alter_table('article_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_article_checks_article_id'))
    op.drop_table('article_checks')
