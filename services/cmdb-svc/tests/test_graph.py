"""Unit tests of the dependency graph, health propagation and impact analysis: no I/O."""

from datetime import UTC, datetime, timedelta

import pytest

from cmdb_svc.domain.graph import (
    CiHealth, Edge, Health, HealthBoard, Node, Signal, Topology, apply_signals, impact_of_failure,
)
from cmdb_svc.domain.model import CiType, Redundancy, RelationshipType

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
UP, DEGRADED, DOWN = Health.UP, Health.DEGRADED, Health.DOWN


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def build(nodes: dict[str, CiType | tuple[CiType, Redundancy]], edges: list[tuple[str, str, str]]) -> Topology:
    """nodes: id -> type (or (type, redundancy)); edges: (source, type, target)."""
    topology = Topology()
    for ci_id, spec in nodes.items():
        ci_type, redundancy = spec if isinstance(spec, tuple) else (spec, None)
        topology.put_node(Node(id=ci_id, type=ci_type, redundancy=redundancy))
    for source, type_, target in edges:
        topology.add_edge(Edge(source_id=source, target_id=target, type=RelationshipType(type_)))
    return topology


def web_shop(redundancy: Redundancy | None = Redundancy(min_up=1), nodes: int = 2) -> Topology:
    """shop (service) depends_on app, app runs_on cluster, cluster has `nodes` servers."""
    spec = {"shop": CiType.BUSINESS_SERVICE, "app": CiType.APPLICATION, "cluster": (CiType.CLUSTER, redundancy)}
    spec |= {f"node{i}": CiType.SERVER for i in range(1, nodes + 1)}
    edges = [("shop", "depends_on", "app"), ("app", "runs_on", "cluster")]
    edges += [(f"node{i}", "member_of", "cluster") for i in range(1, nodes + 1)]
    return build(spec, edges)


def signal(ci_id: str, status: Health, minute: int = 0) -> Signal:
    return Signal(ci_id=ci_id, status=status, observed_at=at(minute))


def run(topology: Topology, *signals: Signal, health=None):
    board = HealthBoard(health or {})
    outcome = apply_signals(topology, board, signals)
    return board, outcome


def test_one_of_two_nodes_down_with_min_up_one_degrades_the_service():
    board, outcome = run(web_shop(), signal("node1", DOWN))
    assert board["cluster"].status == DEGRADED
    assert board["shop"].status == DEGRADED
    assert [(c.ci_id, c.status) for c in outcome.changes] == [
        ("node1", DOWN), ("cluster", DEGRADED), ("app", DEGRADED), ("shop", DEGRADED)]
    assert outcome.changes[-1].cause_ci_ids == ("node1",)


def test_both_nodes_down_takes_the_service_down_naming_both_causes():
    board, outcome = run(web_shop(), signal("node1", DOWN, 0), signal("node2", DOWN, 1))
    assert board["shop"].status == DOWN
    shop = [c for c in outcome.changes if c.ci_id == "shop"]
    assert [(c.status, c.observed_at) for c in shop] == [(DEGRADED, at(0)), (DOWN, at(1))]
    assert shop[-1].cause_ci_ids == ("node1", "node2")


@pytest.mark.parametrize(("down", "expected"), [(0, UP), (1, DEGRADED), (2, DEGRADED), (3, DOWN), (4, DOWN)])
def test_min_up_percent_rounds_up_the_members_needed(down, expected):
    # 50% of 5 members is 3 that must not be down
    topology = web_shop(Redundancy(min_up_percent=50), nodes=5)
    board, _ = run(topology, *(signal(f"node{i}", DOWN, i) for i in range(1, down + 1)))
    assert board["cluster"].status == expected


def test_a_cluster_without_a_rule_needs_every_member():
    board, _ = run(web_shop(redundancy=None), signal("node1", DOWN))
    assert board["cluster"].status == DOWN


def test_a_rule_asking_for_more_members_than_exist_asks_for_all_of_them():
    board, _ = run(web_shop(Redundancy(min_up=5), nodes=2))
    assert board["cluster"].status == UP
    board, _ = run(web_shop(Redundancy(min_up=5), nodes=2), signal("node1", DEGRADED))
    assert board["cluster"].status == DEGRADED


def test_a_degraded_member_still_counts_toward_the_rule_but_degrades_the_cluster():
    board, _ = run(web_shop(Redundancy(min_up=2)), signal("node1", DEGRADED))
    assert board["cluster"].status == DEGRADED


def test_down_propagates_through_a_deep_chain_and_recovery_names_what_recovered():
    names = [f"l{i}" for i in range(8)]
    topology = build({"svc": CiType.BUSINESS_SERVICE} | dict.fromkeys(names, CiType.APPLICATION),
                     [("svc", "depends_on", "l0")]
                     + [(names[i], ("depends_on", "runs_on", "hosted_on")[i % 3], names[i + 1]) for i in range(7)])
    board, outcome = run(topology, signal("l7", DOWN, 0))
    assert all(board[c].status == DOWN for c in [*names, "svc"])
    assert [c.ci_id for c in outcome.changes] == ["l7", "l6", "l5", "l4", "l3", "l2", "l1", "l0", "svc"]
    assert board["svc"].causes == ("l7",)
    board, outcome = run(topology, signal("l7", UP, 5), health=board.pending)
    assert board["svc"].status == UP and board["svc"].since == at(5)
    assert outcome.changes[-1].cause_ci_ids == ("l7",)


def test_degraded_dependency_degrades_and_the_worst_input_wins():
    topology = build({"app": CiType.APPLICATION, "db": CiType.DATABASE, "cache": CiType.OTHER},
                     [("app", "depends_on", "db"), ("app", "depends_on", "cache")])
    board, _ = run(topology, signal("db", DEGRADED, 0))
    assert board["app"].status == DEGRADED
    board, _ = run(topology, signal("db", DEGRADED, 0), signal("cache", DOWN, 1))
    assert board["app"].status == DOWN and board["app"].causes == ("cache", "db")


def test_connects_to_carries_no_health():
    topology = build({"app": CiType.APPLICATION, "switch": CiType.NETWORK}, [("app", "connects_to", "switch")])
    board, outcome = run(topology, signal("switch", DOWN))
    assert board["app"].status == UP
    assert [c.ci_id for c in outcome.changes] == ["switch"]


def test_a_late_signal_is_reported_and_changes_nothing():
    topology = web_shop()
    board, _ = run(topology, signal("node1", DOWN, 10))
    board, outcome = run(topology, signal("node1", UP, 5), health=board.pending)
    assert outcome.late == [signal("node1", UP, 5)] and outcome.changes == []
    assert board["node1"] == CiHealth(reported=DOWN, reported_at=at(10), status=DOWN, since=at(10),
                                      causes=("node1",))


def test_signals_in_one_batch_apply_in_observed_order_keeping_both_transitions():
    board, outcome = run(web_shop(), signal("node1", UP, 3), signal("node1", DOWN, 1))
    assert [(c.ci_id, c.status, c.observed_at) for c in outcome.changes if c.ci_id == "shop"] == [
        ("shop", DEGRADED, at(1)), ("shop", UP, at(3))]
    assert board["shop"].status == UP and outcome.late == []


def test_signals_observed_at_the_same_instant_apply_together():
    topology = web_shop()
    board, _ = run(topology, signal("node1", DOWN, 1))
    _, outcome = run(topology, signal("node1", UP, 3), signal("node2", DOWN, 3), health=board.pending)
    assert [(c.ci_id, c.previous, c.status) for c in outcome.changes] == [("node1", DOWN, UP), ("node2", UP, DOWN)], (
        "the cluster stays degraded: no instant at which both nodes were up")


def test_a_recovery_names_the_recovered_cis_below_it():
    board, _ = run(web_shop(redundancy=None), signal("node1", DOWN, 1), signal("node2", DOWN, 1))
    _, outcome = run(web_shop(redundancy=None), signal("node1", UP, 2), signal("node2", UP, 2),
                     health=board.pending)
    assert outcome.changes[-1].ci_id == "shop" and outcome.changes[-1].cause_ci_ids == ("node1", "node2")


def test_a_signal_that_repeats_the_status_changes_nothing_but_is_applied():
    board, outcome = run(web_shop(), signal("node1", UP, 1))
    assert outcome.changes == [] and outcome.applied == [signal("node1", UP, 1)]
    assert board["node1"].reported_at == at(1)


def test_recomputation_touches_only_ci_that_need_the_changed_one():
    topology = build({"a": CiType.APPLICATION, "b": CiType.APPLICATION, "x": CiType.SERVER, "y": CiType.SERVER},
                     [("a", "runs_on", "x"), ("b", "runs_on", "y")])
    board, _ = run(topology, signal("x", DOWN))
    assert set(board.pending) == {"x", "a"}


def test_a_diamond_is_evaluated_once_per_ci():
    topology = build({"svc": CiType.BUSINESS_SERVICE, "web": CiType.APPLICATION, "api": CiType.APPLICATION,
                      "db": CiType.DATABASE},
                     [("svc", "depends_on", "web"), ("svc", "depends_on", "api"), ("web", "depends_on", "db"),
                      ("api", "depends_on", "db")])
    _, outcome = run(topology, signal("db", DOWN))
    assert [c.ci_id for c in outcome.changes].count("svc") == 1


@pytest.mark.parametrize(("edges", "new", "cycle"), [
    ([("a", "depends_on", "b"), ("b", "runs_on", "c")], ("c", "hosted_on", "a"), ["c", "a", "b", "c"]),
    ([("a", "member_of", "b")], ("a", "depends_on", "b"), ["a", "b", "a"]),
    ([], ("a", "depends_on", "a"), ["a", "a"]),
])
def test_a_dependency_cycle_is_found_and_named(edges, new, cycle):
    topology = build(dict.fromkeys("abc", CiType.APPLICATION), edges)
    source, type_, target = new
    assert topology.find_cycle(Edge(source_id=source, target_id=target, type=RelationshipType(type_))) == cycle


def test_connects_to_never_closes_a_cycle():
    topology = build(dict.fromkeys("ab", CiType.APPLICATION), [("a", "depends_on", "b")])
    assert topology.find_cycle(Edge(source_id="b", target_id="a", type=RelationshipType.CONNECTS_TO)) is None


def test_impact_of_a_redundant_node_is_degraded_with_the_path_to_it():
    impacts = impact_of_failure(web_shop(), {}, "node1")
    assert [(i.service_id, i.status, i.path) for i in impacts] == [
        ("shop", DEGRADED, ["shop", "app", "cluster", "node1"])]


def test_impact_of_a_single_point_of_failure_is_down_for_every_service_above_it():
    topology = web_shop()
    topology.put_node(Node(id="billing", type=CiType.BUSINESS_SERVICE))
    topology.add_edge(Edge(source_id="billing", target_id="app", type=RelationshipType.DEPENDS_ON))
    impacts = impact_of_failure(topology, {}, "app")
    assert sorted((i.service_id, i.status, tuple(i.path)) for i in impacts) == [
        ("billing", DOWN, ("billing", "app")), ("shop", DOWN, ("shop", "app"))]


def test_impact_from_the_current_state_counts_members_already_down():
    topology = web_shop()
    board, _ = run(topology, signal("node2", DOWN))
    assert [i.status for i in impact_of_failure(topology, board.pending, "node1")] == [DOWN]
    assert board["node1"].status == UP, "the simulation writes nothing"


def test_walk_follows_needs_up_to_the_depth():
    topology = web_shop()
    distances, pairs = topology.walk("node1", upstream=True, depth=2)
    assert distances == {"node1": 0, "cluster": 1, "app": 2}
    assert pairs == [("cluster", "node1"), ("app", "cluster")]
    distances, _ = topology.walk("shop", upstream=False, depth=10)
    assert distances == {"shop": 0, "app": 1, "cluster": 2, "node1": 3, "node2": 3}
