"""Standalone mode (`make run`): one process, in-process bus, PostgreSQL; SIGKILL loses nothing."""

import asyncio
import os
import signal
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from itsm_runtime.testing import eventually
from itsm_standalone.stack import start_process, stop_process, wait_ready

# 29101..29105 by default: below the ephemeral port range, apart from the e2e stack and the benchmarks
OFFSET = int(os.environ.get("ITSM_TEST_STANDALONE_PORT_OFFSET", "21000"))
INCIDENT = f"http://127.0.0.1:{8101 + OFFSET}"
SLA = f"http://127.0.0.1:{8102 + OFFSET}"


class Standalone:
    def __init__(self, database_url: str, log: Path):
        self.env = dict(os.environ, ITSM_DATABASE_URL=database_url, ITSM_PORT_OFFSET=str(OFFSET))
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = start_process("itsm-standalone", env=self.env, log_path=self.log)
        for port in range(8101 + OFFSET, 8106 + OFFSET):
            wait_ready(port, process=self.process)

    def kill(self) -> None:
        stop_process(self.process, sig=signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=20)


@pytest.fixture
async def standalone(new_database, tmp_path):
    platform = Standalone(await new_database(), tmp_path / "standalone.log")
    try:
        await asyncio.to_thread(platform.start)
        yield platform
    finally:
        platform.stop()


async def clocks(http, incident_id):
    return (await http.get(f"{SLA}/v1/clocks", params={"incident_id": incident_id})).json()["items"]


async def test_sigkill_and_restart_lose_no_event_and_no_clock(standalone):
    async with httpx.AsyncClient(timeout=10) as http:
        service_id = f"svc-{uuid.uuid4().hex[:8]}"
        agreement = await http.post(f"{SLA}/v1/agreements", json={
            "name": "Gold", "service_id": service_id,
            "targets": [{"metric": "resolution", "priority": 1, "within": "PT6S"}]})
        assert agreement.status_code == 201
        first = (await http.post(f"{INCIDENT}/v1/incidents", json={
            "title": "first", "service_id": service_id, "impact": 1, "urgency": 1})).json()
        resolved_in_time = (await http.post(f"{INCIDENT}/v1/incidents", json={
            "title": "resolved in time", "service_id": service_id, "impact": 1, "urgency": 1})).json()
        clock = (await eventually(lambda: clocks(http, first["id"])))[0]
        await eventually(lambda: clocks(http, resolved_in_time["id"]))
        # killed right after these commits: their events may not have been delivered yet
        resolved = await http.patch(f"{INCIDENT}/v1/incidents/{resolved_in_time['id']}", json={"status": "resolved"})
        assert datetime.fromisoformat(resolved.json()["resolved_at"]) < datetime.fromisoformat(clock["deadline"])
        second = (await http.post(f"{INCIDENT}/v1/incidents", json={
            "title": "second", "service_id": service_id, "impact": 1, "urgency": 1})).json()
        standalone.kill()
        deadline = datetime.fromisoformat(clock["deadline"])
        await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 1)

        await asyncio.to_thread(standalone.start)
        breached = await eventually(lambda: _breached(http, first["id"]))
        assert breached["breached_at"] == clock["deadline"], "the breach is stamped with the deadline"
        assert len(await eventually(lambda: clocks(http, second["id"]))) == 1, "the undelivered event arrived"
        met = (await clocks(http, resolved_in_time["id"]))[0]
        assert met["stage"] == "completed" and met["breached"] is False, "no false breach after the restart"
        assert (await http.get(f"{INCIDENT}/v1/incidents/{second['id']}")).status_code == 200


async def _breached(http, incident_id):
    items = await clocks(http, incident_id)
    return items[0] if items and items[0]["breached"] else None
