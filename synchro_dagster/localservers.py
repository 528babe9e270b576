"""A throw-away PostgreSQL and Redis on this machine, for the several-territories demo and its
tests (`synchro territories demo`, tests/test_territories.py): Debian's `postgresql` and
`redis-server` packages, started in a temporary folder on a free port, stopped at the end.

A real deployment uses its own servers (deploy/dagster.yaml names them from the environment).
PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user the Debian
package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POSTGRES_USER = "postgres"  # created by Debian's postgresql package


class ServerMissing(RuntimeError):
    """A server program is not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin(program: str) -> str:
    """A PostgreSQL server program: Debian keeps them in /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=_version)
    path = found[-1] if found else shutil.which(program)
    if not path:
        raise ServerMissing(
            f"PostgreSQL's {program} is not installed: apt-get install postgresql (Debian), "
            "as .ci/run does."
        )
    return path


def _version(path: str) -> float:
    return float(Path(path).parents[1].name)


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", POSTGRES_USER, "--", *command] if os.geteuid() == 0 else command


def _wait_for(port: int, what: str, process: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{what} stopped at start: {process.communicate()}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on port {port} in {timeout} s") from None
            time.sleep(0.1)


@contextmanager
def postgres(database: str = "dagster") -> Iterator[dict[str, str]]:
    """A PostgreSQL server with one empty database (trust authentication on 127.0.0.1 only);
    yields the environment deploy/dagster.yaml reads it from. The server and its files are gone
    afterwards."""
    import psycopg2

    folder = Path(tempfile.mkdtemp(prefix="synchro-postgres-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(POSTGRES_USER)
        os.chown(folder, user.pw_uid, user.pw_gid)
    data, port = folder / "data", free_port()
    run = {"check": True, "capture_output": True, "text": True}
    subprocess.run(
        _as_server_user(
            [
                postgres_bin("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        **run,
    )
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder}"
    options += " -c fsync=off"  # throw-away data
    pg_ctl = postgres_bin("pg_ctl")
    subprocess.run(
        _as_server_user(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
        ),
        **run,
    )
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres")
        conn.autocommit = True  # CREATE DATABASE runs outside a transaction
        conn.cursor().execute(f'CREATE DATABASE "{database}"')
        conn.close()
        yield {
            "SYNCHRO_POSTGRES_HOST": "127.0.0.1",
            "SYNCHRO_POSTGRES_PORT": str(port),
            "SYNCHRO_POSTGRES_DB": database,
            "SYNCHRO_POSTGRES_USER": "postgres",
            "SYNCHRO_POSTGRES_PASSWORD": "",
        }
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis() -> Iterator[str]:
    """A Redis server without persistence; yields its URL."""
    program = shutil.which("redis-server")
    if not program:
        raise ServerMissing("redis-server is not installed: apt-get install redis-server.")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="synchro-redis-") as folder:
        server = subprocess.Popen(
            [
                program,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                folder,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _wait_for(port, "redis-server", server, 30)
            yield f"redis://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(30)
