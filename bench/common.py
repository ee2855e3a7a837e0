"""Shared plumbing: databases, measured subprocesses, the server, statistics."""

from __future__ import annotations

import os
import platform as host
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
CRM = [sys.executable, "-m", "api.cli"]
SECRET = "bench-secret-key-not-for-production-0123456789"


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    returncode: int


def crm_env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CRM_DATABASE_URL=url,
        CRM_SECRET_KEY=SECRET,
        CRM_LOG_LEVEL="WARNING",
        CRM_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_measured(
    cmd: Sequence[str], env: dict[str, str] | None = None, check: bool = True
) -> Measured:
    """Runs a child and reports wall time and the peak RSS of the child and its
    own children (polled every 20 ms).

    Not wait4's ru_maxrss: a forked child keeps its parent's high-water mark
    through exec, so it reported the bench's own size for every small child."""
    started = time.perf_counter()
    with (
        open(os.devnull, "rb") as stdin,
        _temp_output() as (out, err),
    ):
        proc = subprocess.Popen(
            list(cmd), env=env, cwd=ROOT, stdin=stdin, stdout=out, stderr=err
        )
        peak = _poll_peak_rss(proc)
        proc.returncode = proc.wait()
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        result = Measured(
            seconds,
            peak / 2**20,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            proc.returncode,
        )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {result.returncode}: {result.stderr[-2000:]}"
        )
    return result


def _poll_peak_rss(proc: subprocess.Popen[bytes]) -> int:
    peak = 0
    try:
        tree_rss = TreeRss(psutil.Process(proc.pid))
        while proc.poll() is None:
            peak = max(peak, tree_rss())
            time.sleep(0.02)
    except psutil.Error:
        pass
    return peak


@contextmanager
def _temp_output() -> Iterator[tuple[Any, Any]]:
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        yield out, err


# databases -------------------------------------------------------------------


def pg_create(admin_url: str, name: str, template: str | None = None) -> str:
    """A fresh database `name`, or a copy of `template` (which nobody may be
    connected to). FILE_COPY copies the files after a checkpoint: 0.7 s for the
    1.4 GB demo database, against 4 s for the default, which writes every page
    to the WAL."""
    copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def pg_drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_create(workdir: Path, name: str) -> str:
    path = workdir / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def migrate(url: str) -> None:
    run_measured([*CRM, "migrate"], crm_env(url))


def create_key(url: str, role: str = "admin") -> str:
    out = run_measured([*CRM, "keys", "create", "--role", role], crm_env(url))
    return out.stdout.strip().splitlines()[-1]


# statistics ------------------------------------------------------------------


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median and spread ((max - min) / median) of repeated runs."""
    clean = [float(v) for v in values if v is not None]
    if not clean:
        return {"median": None, "spread": None, "runs": []}
    median = statistics.median(clean)
    spread = (max(clean) - min(clean)) / median if median else 0.0
    return {"median": median, "spread": round(spread, 3), "runs": clean}


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    if not sorted_values:
        return None
    index = min(
        len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1)
    )
    return sorted_values[index]


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "os": f"{host.system()} {host.release()}",
        "load_average": os.getloadavg(),
    }


def pg_version(admin_url: str) -> str:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("synchronous_commit", "fsync", "shared_buffers")
        }
    return f"PostgreSQL {row[0] if row else '?'} {settings}"


# the server ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TreeRss:
    """The RSS of a process and all its descendants, sampled often and cheaply.

    Listing descendants walks every process of the machine (psutil reads
    /proc), about 3 ms: done at every 20 ms sample it cost the bench a fifth
    of a core, taken from the workloads it was measuring. The list is read
    again once a second; each sample only reads the RSS of the known ones
    (worker processes live for the whole run)."""

    RELIST_SECONDS = 1.0

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.children: list[psutil.Process] = []
        self.listed = -self.RELIST_SECONDS

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self.listed >= self.RELIST_SECONDS:
            self.children = self.process.children(recursive=True)
            self.listed = now
        total: int = self.process.memory_info().rss
        for child in self.children:
            with suppress(psutil.Error):
                total += child.memory_info().rss
        return total


class Server:
    """`crm serve` in a child process; polls its RSS while it runs."""

    def __init__(self, url: str, **env: str) -> None:
        self.url = url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = crm_env(url, **env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_rss_mb = 0.0
        self._watch: threading.Thread | None = None
        self._marks: dict[str, float] = {}

    def __enter__(self) -> Server:
        self.log = open(ROOT / "bench-results" / f"serve-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [*CRM, "serve", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"crm serve exited {self.proc.returncode}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("crm serve did not start")
        self._watch = threading.Thread(target=self._poll_rss, daemon=True)
        self._watch.start()
        return self

    def _poll_rss(self) -> None:
        assert self.proc is not None
        try:
            tree_rss = TreeRss(psutil.Process(self.proc.pid))
            while self.proc.poll() is None:
                rss = tree_rss() / 2**20
                self.peak_rss_mb = max(self.peak_rss_mb, rss)
                for name in self._marks:
                    self._marks[name] = max(self._marks[name], rss)
                time.sleep(0.05)
        except psutil.Error:
            pass

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by the server's processes and by PostgreSQL's
        (on this machine). Read before and after a request: a backend that exits
        in between is not counted, so the plan's pooled connections are."""
        assert self.proc is not None
        used = {"server": 0.0, "postgresql": 0.0}
        server = psutil.Process(self.proc.pid)
        for process in [server, *server.children(recursive=True)]:
            with suppress(psutil.Error):
                times = process.cpu_times()
                used["server"] += times.user + times.system
        for process in psutil.process_iter(["name"]):
            if (process.info["name"] or "").startswith("postgres"):
                with suppress(psutil.Error):
                    times = process.cpu_times()
                    used["postgresql"] += times.user + times.system
        return used

    def mark(self, name: str) -> None:
        """Starts tracking the peak RSS under one load (read it with `peak`)."""
        self._marks[name] = 0.0

    def peak(self, name: str) -> float:
        return round(self._marks.pop(name, 0.0), 1)

    def __exit__(self, *_: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_caught_up(base: str, key: str, timeout: float = 600) -> None:
    """Waits until every projection reached the log head (/readyz)."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {key}"}
    while time.monotonic() < deadline:
        body = httpx.get(base + "/readyz", headers=headers, timeout=10).json()
        if all(p["position"] >= body["head"] for p in body["projections"]):
            return
        time.sleep(0.2)
    raise RuntimeError("projections did not catch up")
