"""Stop a tritonserver's process group when the process that started it dies, however it dies.

`TritonServer` starts this file as a script (stdlib only, so it runs without importing the
package) in a session of its own and keeps the write end of its stdin. A normal stop writes
``STOPPED``; end-of-file with nothing written means the parent died (SIGKILL, a SIGTERM it did
not handle, a crash) and nothing ran its cleanup: the watchdog then does what ``stop()`` would
have done. The server module uses the same functions for its own stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

STOPPED = b"stopped"
SHM_PREFIX = b"triton_python_backend_shm_region"


def group_members(pgid: int) -> list[int]:
    """PIDs in the process group (a server and its python stubs), read from Linux /proc."""
    members = []
    with contextlib.suppress(OSError):
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.getpgid(int(proc.name)) == pgid:
                        members.append(int(proc.name))
    return members


def group_shm_regions(pgid: int) -> set[Path]:
    """Shared-memory files named on the command lines of the group's python stubs."""
    regions: set[Path] = set()
    for pid in group_members(pgid):
        with contextlib.suppress(OSError):
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            regions.update(Path("/dev/shm", a.decode()) for a in args if a.startswith(SHM_PREFIX))
    return regions


def _wait_empty(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        time.sleep(0.05)
    return False


def stop_group(pgid: int, timeout_s: float, reap_leader=None) -> None:
    """SIGTERM the group (a graceful unload frees the stubs' shared memory), SIGKILL what is left.

    A server killed while loading leaves its stubs' regions in /dev/shm: those are removed here.
    ``reap_leader`` waits for the leader when it is our child (a zombie stays in the group).
    """
    regions = group_shm_regions(pgid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    if reap_leader is not None:
        reap_leader(timeout_s)
    else:
        _wait_empty(pgid, timeout_s)
    regions |= group_shm_regions(pgid)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the leader may be gone while stubs linger
        os.killpg(pgid, signal.SIGKILL)
    if reap_leader is not None:
        reap_leader(None)
    _wait_empty(pgid, 3.0)  # orphaned stubs are reaped by init, not by us: give it a moment
    for region in regions:
        region.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """``watchdog.py PGID TIMEOUT_S``: block on stdin, then clean up unless told the parent stopped the group."""
    pgid, timeout_s = int(argv[0]), float(argv[1])
    for signum in (signal.SIGINT, signal.SIGHUP):  # a terminal's Ctrl-C or hang-up is the parent's to handle
        signal.signal(signum, signal.SIG_IGN)
    message = sys.stdin.buffer.read()
    if message != STOPPED:
        stop_group(pgid, timeout_s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
