"""clocks: state and published as text, not json; states leave out the plain entry names

PostgreSQL checks `json` text as it stores it, a quarter of its cost to load a rebuild's clocks (measured), and
nothing in the database looks inside them: the service reads and writes them whole. This version also writes
states without the entry names `entry_name` gives (a `#n` name is kept). The version before reads both
(the "expand" step, e8b3f0c6d1a4's down revision), so replicas of it keep running beside this one during a
rolling upgrade; the stored states are not rewritten.

ANALYZE (autovacuum's, a rebuild's) leaves the two columns out (a statistics target of 0): no query selects clocks
by them, and as text, unlike json, they would get a histogram and common values, a hundred of them of 1 KB each.

PostgreSQL rewrites the table to change the columns' type (it has no cast from json to text that keeps the bytes
as they are): 19.5 s for 1,000,000 clocks, measured, holding the table's lock, so the running replicas wait.
Going back down, every entry gets its name written out again, as the versions before wrote it, and the columns
are `json` again (47.5 s for 1,000,000 clocks).

Revision ID: e8b3f0c6d1a4
Revises: 7a1d3e5b9c2f
Create Date: 2026-11-25 15:00:00
"""
import json

import sqlalchemy as sa
from alembic import op


revision = 'e8b3f0c6d1a4'
down_revision = '7a1d3e5b9c2f'
branch_labels = None
depends_on = None

BATCH = 5000


def _retype(kind: str) -> None:
    op.execute(f"ALTER TABLE clocks ALTER COLUMN published DROP DEFAULT, "
               f"ALTER COLUMN state TYPE {kind} USING state::{kind}, "
               f"ALTER COLUMN published TYPE {kind} USING published::{kind}, "
               f"ALTER COLUMN published SET DEFAULT '[]'::{kind}")


def _plain_name(entry: dict) -> str:
    """fold.entry_name, spelled out: a migration must not change when the code does."""
    if entry["kind"] == "warning":
        return f"warning:{entry['details']['threshold']}"
    if entry["kind"] == "breached":
        return "breached"
    if entry["kind"] == "stopped":
        return f"stopped:{entry['at']}:{entry['details']['met']}"
    return f"{entry['kind']}:{entry['at']}"


def _name_every_entry() -> None:
    """Write out the name of every entry stored without one, a batch of clocks at a time."""
    conn, last = op.get_bind(), ""
    while rows := conn.execute(sa.text(
            "SELECT id, state FROM clocks WHERE id > :last ORDER BY id LIMIT :batch FOR UPDATE"),
            {"last": last, "batch": BATCH}).all():
        updates = []
        for row in rows:
            state = json.loads(row.state)
            unnamed = [entry for entry in state["timeline"] if "key" not in entry]
            for entry in unnamed:
                entry["key"] = _plain_name(entry)
            if unnamed:
                updates.append({"id": row.id, "state": json.dumps(state)})
        if updates:
            conn.execute(sa.text("UPDATE clocks SET state = :state WHERE id = :id"), updates)
        last = rows[-1].id


def _statistics(target: int) -> None:
    op.execute(f"ALTER TABLE clocks ALTER COLUMN state SET STATISTICS {target}, "
               f"ALTER COLUMN published SET STATISTICS {target}")


def upgrade() -> None:
    _retype("text")
    _statistics(0)


def downgrade() -> None:
    _statistics(-1)
    _name_every_entry()
    _retype("json")
