"""The soak's process supervisor: PostgreSQL, MLflow, Airflow and the API on this machine.

Each service is a process group of its own with a pid file and a log under the soak folder,
so a resumed soak finds (and stops) what an interrupted one left running, and a fault can
restart or SIGKILL one service while the others keep going. Ports are fixed in the soak's
state, so a restarted service comes back where its clients expect it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from volforecast.data.local_postgres import LocalPostgres

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_BIN = REPO / ".venv-airflow" / "bin"
PROJECT_BIN = REPO / ".venv" / "bin"


def http_ok(url: str, timeout_s: float = 3.0) -> bool:
    """Whether ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310
            return bool(200 <= answer.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class Ports:
    """The soak's ports, drawn once from 18000-18999 and kept in its state."""

    postgres: int
    mlflow: int
    airflow: int
    api: int
    task_logs: int

    @classmethod
    def draw(cls, seed: int) -> Ports:
        base = 18000 + (seed % 200) * 5
        return cls(base, base + 1, base + 2, base + 3, base + 4)


@dataclass
class Service:
    """One long-running process (group) with a health check."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health: Callable[[], bool]
    folder: Path
    start_timeout_s: float = 180.0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.folder / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The running process's id (from the pid file), or None."""
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def start(self) -> None:
        """Start the service (stopping one left behind first) and wait until healthy."""
        self.stop()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n=== soak: start {time.strftime('%H:%M:%S')} ===\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.folder,
            )  # fmt: skip
        self.pid_file.write_text(str(self.process.pid))
        self.wait_healthy()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                msg = f"{self.name} exited with {self.process.returncode}; see {self.log_file}"
                raise RuntimeError(msg)
            if self.health():
                return
            time.sleep(1.0)
        msg = f"{self.name} not healthy after {self.start_timeout_s:.0f} s; see {self.log_file}"
        raise RuntimeError(msg)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after ``timeout_s``."""
        pid = self.pid()
        if pid is not None:
            _stop_group(pid, timeout_s)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1)
            self.process = None
        self.pid_file.unlink(missing_ok=True)

    def kill9(self) -> int:
        """SIGKILL the service's main process alone (its children are left, as after OOM)."""
        pid = self.pid()
        if pid is None:
            msg = f"{self.name} is not running"
            raise RuntimeError(msg)
        os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)
            self.process = None
        # Its process group may still hold task processes: recorded, stopped at the end.
        orphans = self.folder / "run" / "orphan-groups"
        with orphans.open("a") as out:
            out.write(f"{pid}\n")
        self.pid_file.unlink(missing_ok=True)
        return pid


def _stop_group(pgid: int, timeout_s: float) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.3)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def stop_orphans(folder: Path) -> None:
    """Stop the process groups of services that were SIGKILLed (their orphaned children)."""
    orphans = folder / "run" / "orphan-groups"
    if not orphans.exists():
        return
    for line in orphans.read_text().split():
        _stop_group(int(line), 10.0)
    orphans.unlink()


class Postgres(LocalPostgres):
    """The soak's PostgreSQL: kept in the soak folder across resumes, on a fixed port."""

    name = "postgres"

    def __init__(self, folder: Path, port: int) -> None:
        super().__init__(folder=folder / "pg", port=port)

    def start(self) -> Postgres:
        """Start (``initdb`` on first use) and create the two databases the soak uses."""
        super().start()
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            have = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
            for database in ("volforecast", "airflow"):
                if database not in have:
                    conn.execute(f'CREATE DATABASE "{database}"')
        return self


class Stack:
    """Every service of the soak, with the environment each needs."""

    def __init__(self, folder: Path, ports: Ports, secret: str, password: str) -> None:
        self.folder = folder
        self.ports = ports
        self.postgres = Postgres(folder, ports.postgres)
        self.password = password
        self.env = self._environment(secret)
        mlflow_url = f"http://127.0.0.1:{ports.mlflow}"
        api_url = f"http://127.0.0.1:{ports.api}"
        airflow_url = f"http://127.0.0.1:{ports.airflow}"
        vf = str(PROJECT_BIN / "volforecast")
        af = str(AIRFLOW_BIN / "airflow")
        self.mlflow = Service(
            "mlflow", [vf, "mlflow", "--port", str(ports.mlflow)], self.env,
            lambda: http_ok(f"{mlflow_url}/health"), folder,
        )  # fmt: skip
        self.api = Service(
            "api", [vf, "serve", "--port", str(ports.api)], self.env,
            lambda: http_ok(f"{api_url}/health"), folder,
        )  # fmt: skip
        self.api_server = Service(
            "airflow-api-server", [af, "api-server", "-H", "127.0.0.1", "-p", str(ports.airflow)],
            self.env,
            lambda: http_ok(f"{airflow_url}/api/v2/monitor/health"), folder,
        )  # fmt: skip
        self.scheduler = Service(
            "airflow-scheduler", [af, "scheduler"], self.env, self._scheduler_healthy, folder
        )
        self.dag_processor = Service(
            "airflow-dag-processor", [af, "dag-processor"], self.env, lambda: True, folder
        )
        self.services = [self.mlflow, self.api, self.api_server, self.scheduler,
                         self.dag_processor]  # fmt: skip

    def _environment(self, secret: str) -> dict[str, str]:
        home = self.folder / "home"
        airflow_home = self.folder / "airflow"
        ports = self.ports
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VOLFORECAST_", "AIRFLOW"))}
        env.update({
            "PATH": f"{AIRFLOW_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
            "VOLFORECAST_HOME": str(home),
            "VOLFORECAST_BIN": str(PROJECT_BIN / "volforecast"),
            "VOLFORECAST_DATABASE_URL": self.postgres.url_of("volforecast"),
            "VOLFORECAST_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports.mlflow}",
            "VOLFORECAST_INGEST__DROP_DIR": str(self.folder / "incoming"),
            # The API picks up a new production version within seconds, not half a minute.
            "VOLFORECAST_API__MODEL_REFRESH_S": "3",
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{ports.airflow}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "soak:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE":
                str(airflow_home / "passwords.json"),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{ports.airflow}",
            "AIRFLOW__API__PORT": str(ports.airflow),
            "AIRFLOW__API__SECRET_KEY": secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url_of("airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC":
                self.postgres.url_of("airflow", "psycopg_async"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # The scheduler serves task logs on a port of its own (8793 by default).
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports.task_logs),
        })  # fmt: skip
        return env

    def _scheduler_healthy(self) -> bool:
        # The scheduler's job row gets a heartbeat every few seconds once it schedules.
        try:
            with psycopg.connect(self.postgres.dsn("airflow"), connect_timeout=3) as conn:
                row = conn.execute(
                    "SELECT max(latest_heartbeat) > now() - interval '30 seconds' FROM job "
                    "WHERE job_type = 'SchedulerJob' AND state = 'running'"
                ).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    def prepare(self) -> None:
        """The things done once: password file, schemas."""
        airflow_home = self.folder / "airflow"
        airflow_home.mkdir(parents=True, exist_ok=True)
        (airflow_home / "passwords.json").write_text(json.dumps({"soak": self.password}))
        (self.folder / "incoming").mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.run_command([str(AIRFLOW_BIN / "airflow"), "db", "migrate"], "airflow-db-migrate")
        self.run_command([str(PROJECT_BIN / "volforecast"), "db", "upgrade"], "volforecast-db")

    def run_command(
        self, argv: list[str], log_name: str, ok: frozenset[int] = frozenset({0})
    ) -> None:
        """Run a one-off command with the soak's environment; raise on a code not in ``ok``."""
        log_file = self.folder / "logs" / f"{log_name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as log:
            done = subprocess.run(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                  check=False, cwd=self.folder)  # fmt: skip
        if done.returncode not in ok:
            msg = f"{' '.join(argv[:3])} exited with {done.returncode}; see {log_file}"
            raise RuntimeError(msg)

    def start(self, *, airflow: bool = True) -> None:
        """Start every service not healthy already, in dependency order (Airflow's last)."""
        self.postgres.start()
        for service in self.services if airflow else [self.mlflow, self.api]:
            if service.pid() is None or not service.health():
                service.start()

    def health(self) -> dict[str, bool]:
        report = {"postgres": self.postgres.healthy()}
        for service in self.services:
            report[service.name] = service.pid() is not None and service.health()
        return report

    def stop(self) -> None:
        """Stop every service, the orphans of killed ones, then PostgreSQL."""
        for service in reversed(self.services):
            service.stop()
        stop_orphans(self.folder)
        self.postgres.stop()
