"""The processes a benchmark measures: start and stop them (all on 127.0.0.1; they stop with the
benchmark), and read their CPU time and peak memory from Linux's /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(
        self,
        args: list[str],
        ready_url: str,
        log: Path,
        env: dict[str, str] | None = None,
        timeout_s: float = 30.0,
        cwd: Path | None = None,
    ) -> None:
        self.args, self.ready_url, self.log = args, ready_url, log
        self.started = time.perf_counter()
        self._log = log.open("wb")
        self.p = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            cwd=cwd,
        )
        self.cold_start_s = self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> float:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.args[:3]} exited; see {self.log}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1):
                    return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.ready_url} not ready in {timeout_s}s; see {self.log}")

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGINT)  # graceful: the gateway flushes its ledger
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self._log.close()


def gateway_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a Linux process, in seconds (0 where /proc cannot say)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def tree_pids(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for t in Path(f"/proc/{p}/task").glob("*/children"):
            todo += [int(c) for c in t.read_text().split()]
    return pids


def peak_rss_mib(pid: int) -> tuple[float, float]:
    """(sum of VmHWM over the process tree, largest VmHWM of one serving process).

    With --workers N the tree is uvicorn's supervisor, N workers and multiprocessing's
    resource tracker; the per-worker figure is the largest worker's own high-water mark."""
    per_proc: dict[int, float] = {}
    for p in tree_pids(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                per_proc[p] = int(line.split()[1]) / 1024
    workers = [
        v
        for p, v in per_proc.items()
        if p != pid and b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]
    return sum(per_proc.values()), max(workers or [per_proc[pid]])
