"""Starting, probing and stopping the processes the harness measures.

Every server runs in its own session, so stopping it stops its whole process group
(gunicorn's arbiter and worker alike) and nothing it started outlives the run.
"""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import urllib3
import yaml

from .loadgen import BurstResult
from .procfs import peak_rss_bytes

REPO = Path(__file__).resolve().parent.parent
FUNC_YAML = REPO / "func.yaml"
HELLO_WORLD = Path(__file__).resolve().parent / "hello_world.py"
FORWARDER = Path(__file__).resolve().parent / "forwarder.py"
FUNCTION_SOURCE = REPO / "function" / "main.py"
FUNCTION_TARGET = "handle"


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A server process the harness started, and where it answers."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started_at: float
    """``time.perf_counter()`` just before exec."""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        else:
            # The leader is gone; make sure no worker of its group lingers.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_server(name: str, argv: Sequence[str], port: int, env: Mapping[str, str], log_dir: Path) -> Server:
    """Exec ``argv`` in a new session with its output in ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        started_at = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=REPO,
            start_new_session=True,
        )
    return Server(name, process, port, log_path, started_at)


def deployed_threads() -> str:
    """The server threads func.yaml deploys the function with; functions-framework servers
    in the benchmark get the same, so they serve as deployed."""
    envs = yaml.safe_load(FUNC_YAML.read_text())["run"]["envs"]
    return str(next(env["value"] for env in envs if env["name"] == "THREADS"))


def function_argv(port: int) -> list[str]:
    return [
        sys.executable, "-m", "functions_framework",
        "--target", FUNCTION_TARGET, "--source", str(FUNCTION_SOURCE), "--port", str(port),
    ]  # fmt: skip


def compile_like_the_images() -> None:
    """Write the bytecode of jobfn (function/ and reaper/), of the hello-world and of the
    forwarder, as the images do at build (the reaper's through ``pip install``).

    Without it a start compiles from source every module whose bytecode is missing or
    stale, and with ``PYTHONDONTWRITEBYTECODE`` set (the images set it; so may the
    shell) nothing is ever written: on a fresh clone the cold start measured compiling
    all of jobfn (exec → /readyz 1.80 times the hello-world's, against 1.44 compiled, in
    one interleaved run), which no deployed start does.
    """
    for package in ("function", "reaper"):
        compileall.compile_dir(REPO / package, quiet=1)
    for source in (HELLO_WORLD, FORWARDER):
        compileall.compile_file(source, quiet=1)


def hello_world_argv(port: int) -> list[str]:
    return [
        sys.executable, "-m", "functions_framework",
        "--target", "hello", "--source", str(HELLO_WORLD), "--port", str(port),
    ]  # fmt: skip


def forwarder_argv(port: int) -> list[str]:
    return [
        sys.executable, "-m", "functions_framework",
        "--target", "forward", "--source", str(FORWARDER), "--port", str(port),
    ]  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """One HTTP request repeated until it succeeds."""

    method: str
    path: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


#: A submission the forwarder answers 201 once it serves (its job is deleted with the
#: benchmark's others, by ``Bench.clean``).
FORWARDER_PROBE = Probe(
    "POST",
    "/jobs",
    json.dumps({"definition": "forwarder-probe"}).encode(),
    {"Content-Type": "application/json"},
)


def wait_until_ok(server: Server, probe: Probe, timeout: float = 60.0, interval: float = 0.002) -> float:
    """Seconds from the server's exec until ``probe`` first answers 2xx.

    Polls every ``interval`` seconds, on a fresh connection each time so a refused
    connect is retried at once; fails with the server's log if it dies or times out.
    """
    with urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=1, retries=False) as pool:
        return _poll(server, probe, pool, timeout, interval)


def _poll(
    server: Server, probe: Probe, pool: urllib3.HTTPConnectionPool, timeout: float, interval: float
) -> float:
    deadline = server.started_at + timeout
    last = "no answer"
    while True:
        try:
            response = pool.urlopen(
                probe.method,
                probe.path,
                body=probe.body,
                headers=dict(probe.headers),
                timeout=10.0,
                release_conn=True,
            )
            if 200 <= response.status < 300:
                return time.perf_counter() - server.started_at
            last = f"HTTP {response.status}: {response.data[:200]!r}"
        except urllib3.exceptions.HTTPError as error:
            last = type(error).__name__
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited ({server.process.returncode}) before {probe.method} {probe.path} "
                f"succeeded; last answer: {last}\n{server.log_tail()}"
            )
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"{server.name}: {probe.method} {probe.path} not 2xx after {timeout:.0f}s "
                f"(last answer: {last})\n{server.log_tail()}"
            )
        time.sleep(interval)


class LoadGenerator:
    """A ``bench.loadgen`` process, driven one burst at a time."""

    def __init__(
        self,
        target: str,
        options: Mapping[str, str],
        log_dir: Path,
        prefix: Sequence[str] = (),
        name: str | None = None,
    ) -> None:
        """``prefix`` goes before the command (``nsenter --net=...``: a load generator in the
        cluster's network namespace); ``name`` names its log (default: the target)."""
        argv = [*prefix, sys.executable, "-m", "bench.loadgen", "--target", target]
        for key, value in options.items():
            argv += [f"--{key}", value]
        log_dir.mkdir(parents=True, exist_ok=True)
        self._stderr: IO[bytes] = (log_dir / f"loadgen-{name or target}.log").open("ab")
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=REPO,
            text=True,
            bufsize=1,
        )
        self._read()  # {"ready": true}

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"load generator exited ({self.process.returncode}); see {self._stderr.name}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def burst(
        self, concurrency: int, *, count: int | None = None, seconds: float | None = None
    ) -> BurstResult:
        """Run one burst from ``concurrency`` threads and wait for its result."""
        assert self.process.stdin is not None
        command = {"concurrency": concurrency, "count": count, "seconds": seconds}
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return BurstResult(**self._read())

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True)
class Finished:
    """A command run to its end: how long it took and what it cost."""

    returncode: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int


def run_measured(argv: Sequence[str], env: Mapping[str, str], stdout: IO[Any], stderr: IO[Any]) -> Finished:
    """Run a command to completion: wall time, CPU (its rusage) and peak RSS (its VmHWM).

    Peak RSS is read from /proc while the command runs, not from ``ru_maxrss``: that
    one also counts the forking parent's memory (this harness's, about 100 MiB), which
    Linux carries over into the child's figure at exec.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env={**os.environ, **env},
        cwd=REPO,
    )
    peak = 0
    while True:
        waited, status, usage = os.wait4(process.pid, os.WNOHANG)
        if waited:
            break
        peak = max(peak, peak_rss_bytes(process.pid))
        time.sleep(0.01)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Finished(
        returncode=process.returncode,
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_bytes=peak,
    )
