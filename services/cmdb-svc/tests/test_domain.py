"""Unit tests of CIs, redundancy and relationships: no I/O."""

from datetime import UTC, datetime

import pytest

from cmdb_svc.domain.model import (
    Ci, CiAdded, CiChanged, CiType, FieldChange, InvalidCi, InvalidRelationship, LifecycleStatus, Redundancy,
    Relationship, RelationshipAdded, RelationshipType,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def make_ci(**overrides) -> Ci:
    values = dict(id="ci-1", name="payments-db", type="database", created_at=T0)
    values.update(overrides)
    return Ci.create(**values)


def make_relationship(**overrides) -> Relationship:
    values = dict(id="rel-1", source_id="ci-app", target_id="ci-db", type="depends_on", created_at=T0)
    values.update(overrides)
    return Relationship.create(**values)


def test_a_new_ci_records_that_it_was_added():
    ci = make_ci(key="db-01", criticality=1, attributes={"engine": "postgres"})
    assert ci.type == CiType.DATABASE and ci.key == "db-01" and ci.attributes == {"engine": "postgres"}
    assert ci.created_at == ci.updated_at == T0
    assert ci.events == [CiAdded(at=T0)]


@pytest.mark.parametrize("type_", [t.value for t in CiType])
def test_every_known_ci_type_is_accepted(type_):
    assert make_ci(type=type_).type == type_


@pytest.mark.parametrize("type_", ["Server", "db", "", "vm"])
def test_an_unknown_ci_type_is_rejected_and_names_the_field(type_):
    with pytest.raises(InvalidCi) as caught:
        make_ci(type=type_)
    assert caught.value.field == "type"


@pytest.mark.parametrize("criticality", [0, 6, -1])
def test_criticality_outside_one_to_five_is_rejected(criticality):
    with pytest.raises(InvalidCi) as caught:
        make_ci(criticality=criticality)
    assert caught.value.field == "criticality"


def test_a_blank_name_is_rejected():
    with pytest.raises(InvalidCi):
        make_ci(name="   ")


@pytest.mark.parametrize(("value", "expected"), [
    ({"min_up": 2}, Redundancy(min_up=2)),
    ({"min_up_percent": 50}, Redundancy(min_up_percent=50)),
    ({"min_up_percent": 100}, Redundancy(min_up_percent=100)),
    ({"min_up_percent": 0.5}, Redundancy(min_up_percent=0.5)),
])
def test_redundancy_is_a_count_or_a_percentage(value, expected):
    redundancy = Redundancy.from_dict(value)
    assert redundancy == expected
    assert redundancy.as_dict() == value


@pytest.mark.parametrize("value", [
    {},
    {"min_up": 2, "min_up_percent": 50},
    {"min_up": 0},
    {"min_up": -1},
    {"min_up": 2.5},
    {"min_up": True},
    {"min_up": "2"},
    {"min_up_percent": 0},
    {"min_up_percent": 100.1},
    {"min_up_percent": float("nan")},
    {"min_members": 2},
])
def test_invalid_redundancy_is_rejected(value):
    with pytest.raises(InvalidCi) as caught:
        Redundancy.from_dict(value)
    assert caught.value.field.startswith("redundancy")


def test_a_ci_takes_its_redundancy_from_a_mapping():
    cluster = make_ci(type="cluster", redundancy={"min_up": 2})
    assert cluster.redundancy == Redundancy(min_up=2)
    with pytest.raises(InvalidCi):
        make_ci(type="cluster", redundancy={"min_up": 0})


@pytest.mark.parametrize(("redundancy", "members", "required"), [
    (Redundancy(min_up=2), 5, 2),
    (Redundancy(min_up_percent=50), 3, 2),
    (Redundancy(min_up_percent=50), 4, 2),
    (Redundancy(min_up_percent=30), 10, 3),
    (Redundancy(min_up_percent=70), 10, 7),
    (Redundancy(min_up_percent=100), 4, 4),
    (Redundancy(min_up_percent=1), 3, 1),
])
def test_required_members_round_a_percentage_up_without_float_error(redundancy, members, required):
    assert redundancy.required_up(members) == required


def test_a_new_relationship_records_that_it_was_added():
    relationship = make_relationship()
    assert relationship.type == RelationshipType.DEPENDS_ON
    assert relationship.events == [RelationshipAdded(at=T0)]


@pytest.mark.parametrize("type_", ["depends_on", "runs_on", "hosted_on", "member_of", "connects_to"])
def test_every_contract_relationship_type_is_accepted(type_):
    assert make_relationship(type=type_).type == type_


@pytest.mark.parametrize("type_", ["uses", "DEPENDS_ON", ""])
def test_an_unknown_relationship_type_is_rejected(type_):
    with pytest.raises(InvalidRelationship) as caught:
        make_relationship(type=type_)
    assert caught.value.field == "type"


def test_a_ci_cannot_relate_to_itself():
    with pytest.raises(InvalidRelationship) as caught:
        make_relationship(source_id="ci-1", target_id="ci-1")
    assert caught.value.field == "target_id"


def test_a_change_records_the_fields_before_and_after_and_bumps_the_version():
    ci = make_ci(attributes={"engine": "postgres", "tier": "gold"})
    ci.events.clear()
    later = T0.replace(hour=10)
    diff = ci.change({"owner": "dba", "status": "maintenance", "attributes": {"tier": None, "size": "xl"}},
                     at=later, changed_by="alice", change_ref="CHG1")
    assert diff == {"owner": FieldChange(None, "dba"), "status": FieldChange("active", "maintenance"),
                    "attributes": FieldChange({"engine": "postgres", "tier": "gold"},
                                              {"engine": "postgres", "size": "xl"})}
    assert (ci.version, ci.updated_at, ci.status) == (2, later, LifecycleStatus.MAINTENANCE)
    assert ci.events == [CiChanged(at=later, version=2, changes=diff, changed_by="alice", change_ref="CHG1")]


def test_a_change_that_changes_nothing_is_no_version():
    ci = make_ci(criticality=2)
    assert ci.change({"criticality": 2, "attributes": {}}, at=T0) == {}
    assert ci.version == 1


@pytest.mark.parametrize(("changes", "field"), [
    ({"status": "gone"}, "status"), ({"type": "vm"}, "type"), ({"criticality": 0}, "criticality"),
    ({"name": " "}, "name"), ({"redundancy": {"min_up": 0}}, "redundancy.min_up"), ({"colour": "red"}, "colour"),
])
def test_an_invalid_change_is_rejected_and_changes_nothing(changes, field):
    ci = make_ci()
    with pytest.raises(InvalidCi) as caught:
        ci.change(changes, at=T0)
    assert caught.value.field == field
    assert ci.version == 1 and ci.status == LifecycleStatus.ACTIVE
