"""Small helpers the sla-svc integration tests share (on `pythonpath` in pyproject.toml)."""

import uuid


async def make_agreement(sla, *, within="PT2S", metric="resolution", priority=1, **extra) -> dict:
    service_id = extra.pop("service_id", f"svc-{uuid.uuid4().hex[:8]}")
    body = {"name": "Gold", "service_id": service_id,
            "targets": [{"metric": metric, "priority": priority, "within": within}], **extra}
    response = await sla.post("/v1/agreements", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def clocks_of(sla, incident_id: str) -> list[dict]:
    return (await sla.get("/v1/clocks", params={"incident_id": incident_id})).json()["items"]
