"""The CI graph and every CI's health, held in memory by each process.

The database stays the source of truth. Every write to the graph or to health takes the lock of
the single `graph_state` row, compares the versions there with those held here, reloads what is
behind (another process wrote), and after its commit applies its own change here. So a signal
batch walks an in-memory graph instead of querying it, and several replicas stay consistent.
"""

import asyncio
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .db import repository
from .db.repository import GraphVersions
from .domain.graph import CiHealth, Edge, Node, Topology


class LiveGraph:
    def __init__(self):
        # Serialises this process's writers, so the versions read under the row lock match what is held here.
        self.lock = asyncio.Lock()
        self.topology = Topology()
        self.health: dict[str, CiHealth] = {}
        self.versions = GraphVersions(topology=-1, health=-1)

    async def sync(self, conn: AsyncConnection, *, for_update: bool) -> GraphVersions:
        """Catch up with the database; with `for_update`, hold the graph lock until the transaction ends."""
        current = await repository.graph_versions(conn, for_update=for_update)
        if current.topology != self.versions.topology:
            nodes, edges = await repository.load_topology(conn)
            self.topology = Topology(nodes, edges)
        if current.health != self.versions.health:
            newer = await repository.load_health(conn, newer_than=self.versions.health)
            self.health.update(newer)
        self.versions = current
        return current

    async def refresh(self, engine: AsyncEngine) -> None:
        """Catch up before a read, without locking out writers."""
        async with self.lock, engine.connect() as conn:
            await self.sync(conn, for_update=False)

    async def bump_topology(self, conn: AsyncConnection, *, nodes: Iterable[Node] = (),
                            edges: Iterable[Edge] = ()) -> Callable[[], None]:
        """Record a topology write in the database; returns what to run after the commit.

        Call with the graph lock held (after `sync(for_update=True)`).
        """
        committed = GraphVersions(topology=self.versions.topology + 1, health=self.versions.health)
        await repository.set_graph_versions(conn, committed)
        nodes, edges = list(nodes), list(edges)

        def apply() -> None:
            for node in nodes:
                self.topology.put_node(node)
            for edge in edges:
                self.topology.add_edge(edge)
            self.versions = committed

        return apply

    async def bump_health(self, conn: AsyncConnection, changed: Mapping[str, CiHealth]) -> Callable[[], None]:
        """Save a signal batch's health in the database; returns what to run after the commit."""
        committed = GraphVersions(topology=self.versions.topology, health=self.versions.health + 1)
        await repository.save_health(conn, changed, version=committed.health)
        await repository.set_graph_versions(conn, committed)
        changed = dict(changed)

        def apply() -> None:
            self.health.update(changed)
            self.versions = committed

        return apply
