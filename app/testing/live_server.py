"""A real uvicorn process on a free loopback port, over a SQLite file of its own: used by the
tests, the kill loop, the load script and the benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.core.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(self, folder: Path, **env: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.env = {
            "PC_DATABASE_URL": f"sqlite:///{folder / 'pc.sqlite3'}",
            "PC_MODELS_STORE": str(folder / "models_store"),
            "PC_HOST": "127.0.0.1",
            "PC_PORT": str(self.port),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = folder / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group, as under a terminal or `timeout`
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log()}")

    def wait_for_workers(self, timeout: float = 120.0) -> None:
        """Until every worker has warmed up, so a run posted now starts at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = httpx.get(f"{self.url}/health", timeout=5.0).json()["workers"]
            if workers is not None and workers["ready"] == workers["configured"]:
                return
            time.sleep(0.2)
        raise RuntimeError(f"workers not ready within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the server and everything it started, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def kill_group(self) -> None:
        """SIGKILL the server and its workers at once, as a power cut or the OOM killer's
        cgroup kill would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def terminate_group(self, timeout: float = 60.0) -> int:
        """SIGTERM to the server and its workers at once, as `timeout` or a terminal does."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout)

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
