"""The full stack as separate processes: Kafka, PostgreSQL and the five services.

    python -m itsm_standalone.stack up|down|status

`make up` / `make down` call this. Pids and logs go to ITSM_RUN_DIR (default .run/stack).
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from itsm_runtime import pg

from .services import SERVICES, ServiceSpec

ROOT = Path(__file__).resolve().parents[4]


def service_env(spec: ServiceSpec, *, database_url: str, kafka: str, port: int | None = None,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of one service process."""
    env = dict(os.environ)
    env.update({
        f"{spec.env_prefix}DATABASE_URL": database_url,
        f"{spec.env_prefix}KAFKA_BOOTSTRAP_SERVERS": kafka,
        f"{spec.env_prefix}BUS": "kafka",
        f"{spec.env_prefix}PORT": str(port or spec.port),
        f"{spec.env_prefix}HOST": "127.0.0.1",
    })
    env.update(extra or {})
    return env


def start_process(command: str, *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start a console script of this environment in its own process group, logging to `log_path`.

    Under `scripts/with-infra.sh` the group is recorded in $ITSM_RUN_DIR/pids, so that the run's
    clean-up stops it even if the test run that started it was killed.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen([str(Path(sys.executable).parent / command)], env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    if run_dir := os.environ.get("ITSM_RUN_DIR"):
        pids = Path(run_dir) / "pids"
        pids.mkdir(parents=True, exist_ok=True)
        (pids / str(process.pid)).touch()
    return process


def stop_process(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Signal the process group and wait for it (SIGKILL after `timeout`); forget its pid record."""
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        process.wait()  # already gone: reap it
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if run_dir := os.environ.get("ITSM_RUN_DIR"):
        (Path(run_dir) / "pids" / str(process.pid)).unlink(missing_ok=True)


def start_service(spec: ServiceSpec, *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start one service as its own process (its console script in this environment)."""
    return start_process(spec.name, env=env, log_path=log_path)


def wait_ready(port: int, *, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the service on port {port} exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the service on port {port} was not ready within {timeout:.0f}s")


@dataclass
class ProcessStack:
    """Services as separate processes on one database and Kafka, for tests and benchmarks.

    `port_offset` moves every service port (10000: 18101..18105) so that a developer's
    `make up` stack can keep running; `extra_env` sets `<PREFIX>_<NAME>` for every service.
    """

    database_url: str
    kafka: str
    log_dir: Path
    port_offset: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def spec(self, name: str) -> ServiceSpec:
        return next(s for s in SERVICES if s.name == name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.spec(name).port + self.port_offset}"

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str) -> None:
        spec = self.spec(name)
        port = spec.port + self.port_offset
        env = service_env(spec, database_url=self.database_url, kafka=self.kafka, port=port,
                          extra={f"{spec.env_prefix}{k}": v for k, v in self.extra_env.items()})
        process = start_service(spec, env=env, log_path=self.log(name))
        self.processes[name] = process
        wait_ready(port, process=process)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hooks, no flushing, as in a crash."""
        stop_process(self.processes.pop(name), sig=signal.SIGKILL)

    def stop_all(self) -> None:
        for process in self.processes.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            stop_process(process)
        self.processes.clear()


def _kafka(action: str) -> None:
    subprocess.run([str(ROOT / "deploy/local/kafka.sh"), action], check=True)


def up(run_dir: Path, pg_port: int) -> None:
    database_url = os.environ.get("DATABASE_URL") or pg.start(run_dir / "pg", pg_port)
    _kafka("start")
    kafka = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
    for spec in SERVICES:
        pid_file = run_dir / f"{spec.name}.pid"
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            print(f"{spec.name} already running")
            continue
        process = start_service(spec, env=service_env(spec, database_url=database_url, kafka=kafka),
                                log_path=run_dir / f"{spec.name}.log")
        pid_file.write_text(str(process.pid))
    for spec in SERVICES:
        wait_ready(spec.port)
        print(f"{spec.name:12} ready on http://127.0.0.1:{spec.port}  (log: {run_dir / (spec.name + '.log')})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def down(run_dir: Path) -> None:
    for spec in SERVICES:
        pid_file = run_dir / f"{spec.name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not _alive(pid):
                    break
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        pid_file.unlink()
        print(f"{spec.name} stopped")
    _kafka("stop")
    pg.stop(run_dir / "pg")


def status(run_dir: Path) -> int:
    ok = True
    for spec in SERVICES:
        try:
            ready = httpx.get(f"http://127.0.0.1:{spec.port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            ready = False
        ok &= ready
        print(f"{spec.name:12} {'ready' if ready else 'down'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="itsm-stack")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--run-dir", type=Path, default=Path(os.environ.get("ITSM_RUN_DIR", ROOT / ".run/stack")))
    parser.add_argument("--pg-port", type=int, default=15432)
    args = parser.parse_args(argv)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    if args.action == "up":
        up(args.run_dir, args.pg_port)
    elif args.action == "down":
        down(args.run_dir)
    else:
        return status(args.run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
