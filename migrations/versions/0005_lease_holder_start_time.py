"""lease holder start time: a dead holder on the same host is told from a reused pid

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10

A lease named its holder by host and pid only, so a holder killed with
SIGKILL blocked every claimant until its ttl ran out, even on its own host
where anyone can see the pid is gone. A pid alone cannot be trusted for the
takeover: the kernel reuses pids, and a live stranger with the dead holder's
pid would keep the lease held forever (or worse, a dead holder would look
alive). So the holder's process start is stored beside it, as
`<boot id>:<start time in clock ticks since boot>` (/proc/<pid>/stat field
22): a process with that pid and another start, or a machine booted since,
is not the holder (ops/lease.py, `process_gone`).

`crawl_runs.pid_started` is the same for the process working on a run, so
the run of a dead holder is marked abandoned by the same check at the same
moment. Both are null on rows written before this revision (and off Linux):
for those only the pid is looked at, as before.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default) on both databases: no batch rebuild needed.
    op.add_column('leases', sa.Column('holder_started', sa.String(length=100), nullable=True))
    op.add_column('crawl_runs', sa.Column('pid_started', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.drop_column('pid_started')
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_column('holder_started')
