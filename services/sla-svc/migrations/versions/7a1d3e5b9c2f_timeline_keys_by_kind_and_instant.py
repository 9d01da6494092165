"""clocks: timeline entries named by kind and instant, not by rank

A late event stamped before entries already published renamed them when they were named by rank: the earlier
entry was never published and the later one went out again. Entries are now named `kind:instant` (a stop's name
adds whether it met its target; a second of one kind at one instant adds `#2`), warnings and the breach as before.
The stored states are renamed, and the names recorded as published get the new name besides the old one, so
nothing is published again by replicas of either version, which run side by side during a rolling upgrade. The
states keep their ranks (`counts`), which the version before reads. (Entries that a replica of the version before
publishes during the upgrade are published once more by the new version when their clock is next folded.)

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
    names: dict[str, int] = {}
    for entry in timeline:
        if entry["kind"] in NAMED:
            key = entry["key"]
        else:
            key = f"{entry['kind']}:{entry['at']}" + (f":{entry['details']['met']}" if entry["kind"] == "stopped"
                                                      else "")
        n = names[key] = names.get(key, 0) + 1
        entry["key"] = key if n == 1 else f"{key}#{n}"


def _by_rank(state: dict) -> None:
    """As fold.py named them before, with the ranks it kept (`counts`), which later versions no longer write."""
    counts: dict[str, int] = {}
    for entry in state["timeline"]:
        n = counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
        if entry["kind"] == "stopped":
            entry["key"] = f"stopped:{n}:{entry['at']}:{entry['details']['met']}"
        elif entry["kind"] not in NAMED:
            entry["key"] = f"{entry['kind']}:{n}"
    state["counts"] = counts


def _rename(change: Callable[[dict], None]) -> None:
    """Rename the entries of every clock's state, and the names recorded as published, a batch at a time."""
    conn, last = op.get_bind(), ""
    # locked until the migration commits: a replica of the version before, still running, waits to change them
    while rows := conn.execute(sa.text(
            "SELECT id, state::text AS state, published::text AS published FROM clocks WHERE id > :last "
            "ORDER BY id LIMIT :batch FOR UPDATE"), {"last": last, "batch": BATCH}).all():
        updates = []
        for row in rows:
            state = json.loads(row.state)
            before = [entry["key"] for entry in state["timeline"]]
            change(state)
            renamed = dict(zip(before, (entry["key"] for entry in state["timeline"]), strict=True))
            # both names: replicas of either version, running side by side during a rolling upgrade, find what
            # went out as published (a name no entry has any more is never looked up)
            published = sorted({name for key in json.loads(row.published) for name in (key, renamed.get(key, key))})
            updates.append({"id": row.id, "state": json.dumps(state), "published": json.dumps(published)})
        conn.execute(sa.text("UPDATE clocks SET state = CAST(:state AS json), published = CAST(:published AS json) "
                             "WHERE id = :id"), updates)
        last = rows[-1].id


def upgrade() -> None:
    _rename(lambda state: _by_instant(state["timeline"]))


def downgrade() -> None:
    _rename(_by_rank)
