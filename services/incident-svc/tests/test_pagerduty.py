"""Alert intake on real PostgreSQL and Kafka: PagerDuty Events API v2 payloads, and the official
`pagerduty` client, unchanged, against the service over real HTTP."""

import asyncio
import json
import re
import socket
import ssl
import subprocess
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

import pagerduty
import pytest
import uvicorn

from itsm_events import topics
from itsm_runtime.testing import read_topic

ROUTING_KEY = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def tls_certificate(tmp_path_factory) -> tuple[str, str]:
    """A throwaway self-signed certificate for 127.0.0.1: the official client accepts only https:// URLs."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
async def base_url(app, client, tls_certificate):
    """The same app served by uvicorn over HTTPS on 127.0.0.1 (its lifespan already runs through `client`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cert, key = tls_certificate
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off", ssl_certfile=cert, ssl_keyfile=key,
                                           timeout_graceful_shutdown=5))
    server.capture_signals = nullcontext
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"https://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def new_integration(client, **overrides) -> dict:
    body = {"name": "Prometheus", "service_id": f"svc-{uuid.uuid4().hex[:8]}", "customer_id": "acme"} | overrides
    response = await client.post("/v1/integrations", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def trigger(routing_key: str, **overrides) -> dict:
    event = {"routing_key": routing_key, "event_action": "trigger",
             "payload": {"summary": "Disk 95% full on db-1", "source": "db-1", "severity": "error"}}
    payload = overrides.pop("payload", {})
    event["payload"] |= payload
    return event | overrides


async def incidents_of(client, service_id: str) -> list[dict]:
    return (await client.get("/v1/incidents", params={"service_id": service_id})).json()["items"]


async def test_an_integration_gets_a_pagerduty_style_routing_key(client):
    integration = await new_integration(client, name="Nagios")
    assert ROUTING_KEY.match(integration["routing_key"])
    assert integration["name"] == "Nagios" and integration["customer_id"] == "acme" and integration["created_at"]
    fetched = await client.get(f"/v1/integrations/{integration['id']}")
    assert fetched.json() == integration
    missing = await client.get(f"/v1/integrations/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    bad = await client.post("/v1/integrations", json={"name": "", "service_id": "s"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


async def test_trigger_opens_an_incident_at_the_event_time_with_levels_from_severity(client, kafka_bootstrap):
    integration = await new_integration(client)
    detected = (datetime.now(UTC) - timedelta(minutes=7)).replace(microsecond=0)
    event = trigger(integration["routing_key"], dedup_key="db-1/disk",
                    payload={"timestamp": detected.strftime("%Y-%m-%dT%H:%M:%S.000+0000"), "component": "postgres",
                             "custom_details": {"free": "5%"}})
    response = await client.post("/v2/enqueue", json=event)
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "db-1/disk"}
    [incident] = await incidents_of(client, integration["service_id"])
    assert incident["title"] == "Disk 95% full on db-1" and incident["customer_id"] == "acme"
    assert (incident["impact"], incident["urgency"], incident["priority"]) == (2, 1, 2)
    assert datetime.fromisoformat(incident["opened_at"]) == detected
    assert incident["alert_count"] == 1 and incident["status"] == "new"
    assert "Component: postgres" in incident["description"] and '"free": "5%"' in incident["description"]

    def opened(records):
        return [r for r in records if r.key == incident["id"].encode()
                and dict(r.headers)["ce_type"] == b"itsm.incident.opened"]

    record = opened(await read_topic(kafka_bootstrap, topics.INCIDENT, until=opened))[0]
    assert datetime.fromisoformat(json.loads(record.value)["opened_at"]) == detected


async def test_repeated_triggers_append_to_the_open_incident_and_raise_its_priority(client, kafka_bootstrap):
    integration = await new_integration(client)
    key = integration["routing_key"]
    await client.post("/v2/enqueue", json=trigger(key, dedup_key="cpu", payload={"severity": "warning"}))
    again = await client.post("/v2/enqueue", json=trigger(key, dedup_key="cpu",
                                                          payload={"summary": "CPU 99%", "severity": "critical"}))
    assert again.status_code == 202 and again.json()["dedup_key"] == "cpu"
    [incident] = await incidents_of(client, integration["service_id"])
    assert incident["alert_count"] == 2 and incident["priority"] == 1
    assert incident["title"] == "Disk 95% full on db-1", "the first alert names the incident"

    def appended(records):
        return [r for r in records if r.key == incident["id"].encode()
                and dict(r.headers)["ce_type"] == b"itsm.incident.alert_appended"]

    record = appended(await read_topic(kafka_bootstrap, topics.INCIDENT, until=appended))[0]
    data = json.loads(record.value)
    assert data["dedup_key"] == "cpu" and data["integration_id"] == integration["id"]
    assert data["summary"] == "CPU 99%" and data["severity"] == "critical" and data["source"] == "db-1"


async def test_the_same_event_sent_again_is_one_alert(client):
    integration = await new_integration(client)
    event = trigger(integration["routing_key"])  # no dedup_key: the service makes one up
    first, retry = [await client.post("/v2/enqueue", json=event) for _ in range(2)]
    assert ROUTING_KEY.match(first.json()["dedup_key"]), "a generated dedup key is 32 hex characters"
    assert retry.json()["dedup_key"] == first.json()["dedup_key"]
    [incident] = await incidents_of(client, integration["service_id"])
    assert incident["alert_count"] == 1


async def test_concurrent_triggers_with_one_dedup_key_open_one_incident(client):
    integration = await new_integration(client)
    responses = await asyncio.gather(*(
        client.post("/v2/enqueue", json=trigger(integration["routing_key"], dedup_key="storm",
                                                payload={"summary": f"alert {n}"}))
        for n in range(6)))
    assert {r.status_code for r in responses} == {202}
    [incident] = await incidents_of(client, integration["service_id"])
    assert incident["alert_count"] == 6


async def test_acknowledge_resolve_and_a_later_trigger_opens_a_new_incident(client):
    integration = await new_integration(client)
    key = integration["routing_key"]
    await client.post("/v2/enqueue", json=trigger(key, dedup_key="api-5xx"))
    [incident] = await incidents_of(client, integration["service_id"])
    ack = await client.post("/v2/enqueue", json={"routing_key": key, "event_action": "acknowledge",
                                                 "dedup_key": "api-5xx"})
    assert ack.status_code == 202 and ack.json()["dedup_key"] == "api-5xx"
    assert (await client.get(f"/v1/incidents/{incident['id']}")).json()["status"] == "in_progress"
    resolve = {"routing_key": key, "event_action": "resolve", "dedup_key": "api-5xx"}
    for _ in range(2):  # a retried resolve changes nothing more
        assert (await client.post("/v2/enqueue", json=resolve)).status_code == 202
    resolved = (await client.get(f"/v1/incidents/{incident['id']}")).json()
    assert resolved["status"] == "resolved" and "Prometheus" in resolved["resolution_notes"]
    # an ack after the resolve does not reopen it
    await client.post("/v2/enqueue", json=resolve | {"event_action": "acknowledge"})
    assert (await client.get(f"/v1/incidents/{incident['id']}")).json()["status"] == "resolved"
    # PagerDuty semantics: the dedup key is free again once its incident is resolved
    await client.post("/v2/enqueue", json=trigger(key, dedup_key="api-5xx"))
    both = await incidents_of(client, integration["service_id"])
    assert len(both) == 2 and both[1]["status"] == "new" and both[1]["alert_count"] == 1


async def test_acknowledge_or_resolve_of_an_unknown_dedup_key_is_accepted_and_changes_nothing(client):
    integration = await new_integration(client)
    for action in ("acknowledge", "resolve"):
        response = await client.post("/v2/enqueue", json={"routing_key": integration["routing_key"],
                                                          "event_action": action, "dedup_key": "never-seen"})
        assert response.status_code == 202 and response.json()["dedup_key"] == "never-seen"
    assert await incidents_of(client, integration["service_id"]) == []


KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("event", "error"), [
    (trigger(KEY, payload={"summary": None}), "'payload.summary' is missing or blank"),
    ({"routing_key": KEY, "event_action": "trigger",
      "payload": {"source": "h", "severity": "info"}}, "'payload.summary' is missing or blank"),
    (trigger(KEY, payload={"summary": "   "}), "'payload.summary' is missing or blank"),
    (trigger(KEY, payload={"summary": "x" * 1025}), "'payload.summary' is invalid"),
    (trigger(KEY, payload={"severity": "sev1"}), "'payload.severity' is invalid"),
    (trigger(KEY, payload={"source": ""}), "'payload.source'"),
    (trigger(KEY, payload={"timestamp": "yesterday"}), "'payload.timestamp' is not an ISO 8601 date-time"),
    ({"routing_key": KEY, "event_action": "trigger"}, "'payload' is missing or blank"),
    ({"routing_key": KEY, "event_action": "acknowledge"}, "'dedup_key' is missing or blank"),
    ({"routing_key": KEY, "event_action": "resolve", "dedup_key": ""}, "'dedup_key' is invalid"),
    ({"routing_key": KEY, "event_action": "snooze", "dedup_key": "k"}, "'event_action' must be one of"),
    ({"routing_key": KEY, "dedup_key": "k"}, "'event_action' is missing or blank"),
    (trigger("short"), "Length of 'routing_key' is incorrect (should be 32 characters)"),
    (trigger("0123456789abcdef0123456789abcde!"), "'routing_key' cannot contain non-alphanumeric characters."),
    ({"event_action": "resolve", "dedup_key": "k"}, "'routing_key' is missing or blank"),
    (trigger(KEY, dedup_key="k" * 256), "'dedup_key' is invalid"),
    (trigger(KEY, payload={"summary": "a\u0000b"}), "NUL character"),
    (trigger(KEY, payload={"custom_details": {"x": float("nan")}}), "not finite"),
    (trigger(KEY, links=[{"text": "no href"}]), "'links.0.href' is missing or blank"),
    ([1, 2], "Event object must be a JSON object"),
])
async def test_bad_events_are_400_in_pagerduty_format(client, event, error):
    body = json.dumps(event, allow_nan=True)
    response = await client.post("/v2/enqueue", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["status"] == "invalid event" and answer["message"] == "Event object is invalid"
    assert any(error in line for line in answer["errors"]), answer["errors"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"[" * 100_000, b"{}" + b" " * (513 * 1024)])
async def test_unparseable_or_oversized_bodies_are_400_in_pagerduty_format(client, body):
    response = await client.post("/v2/enqueue", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["status"] == "invalid event" and response.json()["errors"]


async def test_an_unknown_routing_key_is_400_invalid_routing_key(client):
    response = await client.post("/v2/enqueue", json=trigger(uuid.uuid4().hex))
    assert response.status_code == 400
    assert response.json() == {"status": "invalid event", "message": "Event object is invalid",
                               "errors": ["Invalid routing key"]}


@pytest.mark.parametrize(("path", "content_type"), [
    ("/v2/enqueue", "application/json; charset=utf-8"),
    ("/v2/enqueue", "text/plain"),
    ("/v2/enqueue", "application/x-www-form-urlencoded"),  # curl -d without -H
    ("/v2/enqueue", None),
    ("/v2/enqueue/", "application/json"),
])
async def test_events_are_read_as_json_whatever_the_content_type_and_on_the_trailing_slash_path(
        client, path, content_type):
    integration = await new_integration(client)
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(path, content=json.dumps(trigger(integration["routing_key"], dedup_key="ct")),
                                 headers=headers)
    assert response.status_code == 202, response.text
    assert len(await incidents_of(client, integration["service_id"])) == 1


async def test_the_official_pagerduty_client_works_unchanged_over_http(client, base_url, tls_certificate):
    integration = await new_integration(client, name="pagerduty-python")
    # only the base URL and the CA to trust change: both are constructor options of the client
    trust = ssl.create_default_context(cafile=tls_certificate[0])
    with (pagerduty.EventsApiV2Client(integration["routing_key"], base_url=base_url, verify=trust) as pd,
          pagerduty.EventsApiV2Client(uuid.uuid4().hex, base_url=base_url, verify=trust) as stranger):
        await _use_the_official_client(client, integration, pd, stranger)


async def _use_the_official_client(client, integration, pd, stranger):
    """trigger, dedup append, acknowledge, resolve, a generated dedup key and an unknown routing key."""
    dedup_key = await asyncio.to_thread(pd.trigger, "Checkout latency above 2s", "web-3", dedup_key="checkout/p99",
                                        severity="critical", custom_details={"p99_ms": 2300},
                                        links=[{"href": "https://grafana.example/d/checkout", "text": "Dashboard"}])
    assert dedup_key == "checkout/p99"
    [incident] = await incidents_of(client, integration["service_id"])
    assert incident["priority"] == 1 and incident["title"] == "Checkout latency above 2s"

    assert await asyncio.to_thread(pd.trigger, "Checkout latency above 3s", "web-4", dedup_key="checkout/p99",
                                   severity="error") == "checkout/p99"
    assert (await client.get(f"/v1/incidents/{incident['id']}")).json()["alert_count"] == 2

    assert await asyncio.to_thread(pd.acknowledge, "checkout/p99") == "checkout/p99"
    assert (await client.get(f"/v1/incidents/{incident['id']}")).json()["status"] == "in_progress"

    assert await asyncio.to_thread(pd.resolve, "checkout/p99") == "checkout/p99"
    resolved = (await client.get(f"/v1/incidents/{incident['id']}")).json()
    assert resolved["status"] == "resolved" and resolved["alert_count"] == 2
    assert len(await incidents_of(client, integration["service_id"])) == 1

    generated = await asyncio.to_thread(pd.trigger, "Queue backlog", "worker-1", severity="warning")
    assert ROUTING_KEY.match(generated)
    assert len(await incidents_of(client, integration["service_id"])) == 2

    with pytest.raises(pagerduty.HttpError) as rejected:
        await asyncio.to_thread(stranger.trigger, "x", "y")
    assert rejected.value.response.status_code == 400
    assert rejected.value.response.json()["errors"] == ["Invalid routing key"]


async def test_acknowledge_and_resolve_take_their_event_time_from_the_payload_timestamp(client):
    integration = await new_integration(client)
    key = integration["routing_key"]
    opened = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    await client.post("/v2/enqueue", json=trigger(key, dedup_key="t", payload={"timestamp": opened.isoformat()}))
    resolved_at = opened + timedelta(minutes=12)
    await client.post("/v2/enqueue", json={"routing_key": key, "event_action": "resolve", "dedup_key": "t",
                                           "payload": {"timestamp": resolved_at.isoformat()}})
    [incident] = await incidents_of(client, integration["service_id"])
    assert datetime.fromisoformat(incident["resolved_at"]) == resolved_at


async def test_unstorable_text_in_an_integration_is_a_problem_not_a_500(client):
    for name in ("a\u0000b", "\ud800"):
        body = json.dumps({"name": name, "service_id": "svc"})
        response = await client.post("/v1/integrations", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/integrations/%00")).status_code == 422
    event = json.dumps(trigger(KEY, payload={"summary": "\ud800"}))
    assert (await client.post("/v2/enqueue", content=event)).json()["status"] == "invalid event"


async def test_openapi_documents_the_intake_and_its_severity_table(client):
    spec = (await client.get("/openapi.json")).json()
    enqueue = spec["paths"]["/v2/enqueue"]["post"]
    assert "critical -> impact 1, urgency 1, P1" in enqueue["description"]
    assert "info -> impact 3, urgency 3, P5" in enqueue["description"]
    assert "400" in enqueue["responses"] and "/v1/integrations" in spec["paths"]
    assert "/v1/services/{service_id}/outage-policy" in spec["paths"]
