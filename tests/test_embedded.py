"""The embedded default: one server per data folder shared by every process, stopped with the last one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

HOLDER = """
import sys
from market_warehouse.resources.database import warehouse_url
from market_warehouse.resources.embedded import start_embedded
from market_warehouse.resources.settings import load_settings
url = warehouse_url()
server = start_embedded(load_settings().embedded_pgdata)
print(server.get_pid(), flush=True)
sys.stdin.readline()
"""


def _holder(home) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "MW_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    assert line.strip().isdigit(), f"holder failed to start the server: {line!r}"
    return proc, int(line)


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(timeout=60)


def _wait_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_processes_share_one_server_which_stops_with_the_last(safe_tmp):
    first, pid = _holder(safe_tmp)
    second, pid2 = _holder(safe_tmp)
    assert pid == pid2, "both processes must use the same server"
    _release(first)
    assert psutil.pid_exists(pid), "server stopped while a process still used it"
    _release(second)
    assert _wait_gone(pid), "server still running after the last process exited"
    assert (safe_tmp / "pgdata" / "PG_VERSION").exists(), "data folder must be kept"


@pytest.mark.slow
def test_a_killed_holder_does_not_keep_the_server_alive_forever(safe_tmp):
    killed, pid = _holder(safe_tmp)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    survivor, pid2 = _holder(safe_tmp)  # prunes the dead holder from the list
    assert pid2 == pid
    _release(survivor)
    assert _wait_gone(pid), "server kept alive by a dead process's handle"
