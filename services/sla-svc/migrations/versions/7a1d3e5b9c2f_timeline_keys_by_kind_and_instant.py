"""clocks: timeline entries named by kind and instant, not by rank

A late event stamped before entries already published renamed them when they were named by rank: the earlier
entry was never published and the later one went out again. Entries are now named `kind:instant` (a stop's name
adds whether it met its target; a second of one kind at one instant adds `#2`), warnings and the breach as before.
The stored states and the names recorded as published are renamed alike, so nothing is published again. The
states keep their ranks (`counts`), which the version before reads: replicas of both run during a rolling upgrade.

Revision ID: 7a1d3e5b9c2f
Revises: 9c41e7a2d5b8
Create Date: 2026-11-25 11:20:00
"""
import json
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op


revision = '7a1d3e5b9c2f'
down_revision = '9c41e7a2d5b8'
branch_labels = None
depends_on = None

BATCH = 5000
NAMED = ("warning", "breached")  # by threshold, and once: the same in both schemes


def _by_instant(timeline: list[dict]) -> None:
    """As fold.py names them now."""
    for i, entry in enumerate(timeline):
        if entry["kind"] in NAMED:
            continue
        met = f":{entry['details']['met']}" if entry["kind"] == "stopped" else ""
        key = f"{entry['kind']}:{entry['at']}{met}"
        if any(e["key"] == key for e in timeline[:i]):
            key += f"#{sum(1 for e in timeline[:i] if e['kind'] == entry['kind'] and e['at'] == entry['at']) + 1}"
        entry["key"] = key


def _by_rank(timeline: list[dict]) -> None:
    """As fold.py named them before."""
    counts: dict[str, int] = {}
    for entry in timeline:
        n = counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
        if entry["kind"] == "stopped":
            entry["key"] = f"stopped:{n}:{entry['at']}:{entry['details']['met']}"
        elif entry["kind"] not in NAMED:
            entry["key"] = f"{entry['kind']}:{n}"


def _rename(change: Callable[[dict], None]) -> None:
    """Rename the entries of every clock's state, and the names recorded as published, a batch at a time."""
    conn, last = op.get_bind(), ""
    while rows := conn.execute(sa.text(
            "SELECT id, state::text AS state, published::text AS published FROM clocks WHERE id > :last "
            "ORDER BY id LIMIT :batch"), {"last": last, "batch": BATCH}).all():
        updates = []
        for row in rows:
            state = json.loads(row.state)
            before = [entry["key"] for entry in state["timeline"]]
            change(state)
            renamed = dict(zip(before, (entry["key"] for entry in state["timeline"]), strict=True))
            published = sorted({renamed.get(key, key) for key in json.loads(row.published)})
            updates.append({"id": row.id, "state": json.dumps(state), "published": json.dumps(published)})
        conn.execute(sa.text("UPDATE clocks SET state = CAST(:state AS json), published = CAST(:published AS json) "
                             "WHERE id = :id"), updates)
        last = rows[-1].id


def upgrade() -> None:
    _rename(lambda state: _by_instant(state["timeline"]))


def downgrade() -> None:
    _rename(lambda state: _by_rank(state["timeline"]))
