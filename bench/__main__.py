"""Run every benchmark and print (and save) the numbers: `make bench`."""

import asyncio
import json
import platform

from . import breach_latency, cmdb_signals, incident_throughput, sla_scale
from .common import RESULTS


async def main() -> None:
    results = {"machine": f"{platform.machine()} {platform.python_version()}"}
    results["incident_throughput"] = await incident_throughput.run()
    print(json.dumps({"incident_throughput": results["incident_throughput"]}), flush=True)
    results["breach_latency"] = await breach_latency.run()
    print(json.dumps({"breach_latency": results["breach_latency"]}), flush=True)
    results["cmdb_signals"] = await cmdb_signals.run()
    print(json.dumps({"cmdb_signals": results["cmdb_signals"]}), flush=True)
    results["sla_scale"] = await sla_scale.run()
    print(json.dumps({"sla_scale": results["sla_scale"]}), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
