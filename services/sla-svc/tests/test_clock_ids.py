"""Clock ids: a replay gives every clock the id it had (a name-based UUID, version 5)."""

import uuid

from hypothesis import given
from hypothesis import strategies as st

from sla_svc.domain.fold import ClockSpec
from sla_svc.handlers import CLOCK_IDS, clock_id

ids = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=40))


@given(agreement_id=ids, incident_id=ids, metric=st.sampled_from(["response", "resolution"]),
       objective_id=st.one_of(st.none(), ids))
def test_a_clock_id_is_the_uuid5_of_its_agreement_incident_metric_and_objective(
        agreement_id, incident_id, metric, objective_id):
    spec = ClockSpec(metric=metric, targets={1: 60.0}, thresholds=(), pause_on=(), objective_id=objective_id)
    name = f"{agreement_id}/{incident_id}/{metric}" + (f"/{objective_id}" if objective_id else "")
    assert clock_id(agreement_id, incident_id, spec) == str(uuid.uuid5(CLOCK_IDS, name))
