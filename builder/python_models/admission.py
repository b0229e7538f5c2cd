"""Admission control for one served ensemble: a bounded number of requests in flight through its steps.

Triton's queue policies refuse a call only where it queues, and the queue of an overloaded ensemble is
the network step's, after the preprocess step has already decoded the image. This gate refuses first:
the preprocess step takes a slot before reading its input, the postprocess step gives it back, so the
server decodes only what it has the capacity to finish and refuses the rest at the cost of a file lock.

The slots live in a small file under /dev/shm that every process of the ensemble's steps maps (each
Python-backend instance is its own process). A slot holds its admission time, which is also the token
the request carries to the postprocess step. A request can die between the steps: its caller's deadline
passed or it hung up (Triton then cancels the rest of the ensemble), its network step failed, or a caller
reached the preprocess step directly. Its slot is then taken over once it has been held for its lease:
four times the slowest recent admitted request (a maximum that halves every ten seconds), at least one
second and at most `max_lease_s`. A slow request whose slot is taken over lets one more request in; a
dead one stops costing capacity within about four service times.

Copied next to the preprocess and postprocess steps' model.py as `focoos_admission.py`; stdlib only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
import time
from collections.abc import Iterator

SLOT = struct.Struct("<q")  # admission time in monotonic nanoseconds; 0: free
# Before the slots: the slowest recent service time and when it was recorded (monotonic nanoseconds).
HEADER = struct.Struct("<qq")
LEASE_FACTOR = 4
MIN_LEASE_NS = 1_000_000_000
SLOWEST_HALF_LIFE_NS = 10_000_000_000
GATE_PREFIX = "focoos-admission-"
GATE_DIR_ENV = "FOCOOS_ADMISSION_DIR"  # set by TritonServer to a folder it removes when the server stops


def gate_path(server_pid: int, repository: str, ensemble: str) -> str:
    """Where the gate of `ensemble` lives for the server `server_pid` (a fresh server never sees stale slots)."""
    key = hashlib.sha256(f"{server_pid}\0{os.path.realpath(repository)}\0{ensemble}".encode()).hexdigest()[:16]
    folder = os.environ.get(GATE_DIR_ENV) or ("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    return os.path.join(folder, f"{GATE_PREFIX}{key}")


class AdmissionGate:
    """At most `capacity` admitted requests at once, shared by every process that opens the same path."""

    def __init__(self, path: str, capacity: int, max_lease_s: float) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.max_lease_ns = max(MIN_LEASE_NS, int(max_lease_s * 1e9))
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = HEADER.size + capacity * SLOT.size
        with self._locked():
            if os.fstat(self._fd).st_size < size:  # the first process sizes it; others may ask for fewer slots
                os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slot(self, slot: int) -> int:
        return SLOT.unpack_from(self._map, HEADER.size + slot * SLOT.size)[0]

    def _set_slot(self, slot: int, value: int) -> None:
        SLOT.pack_into(self._map, HEADER.size + slot * SLOT.size, value)

    def _slowest(self, now: int) -> int:
        """The slowest recent service time, halved for every half-life since it was recorded."""
        slowest, recorded = HEADER.unpack_from(self._map, 0)
        return int(slowest * 0.5 ** ((now - recorded) / SLOWEST_HALF_LIFE_NS)) if slowest else 0

    def _lease(self, now: int) -> int:
        return min(self.max_lease_ns, max(MIN_LEASE_NS, LEASE_FACTOR * self._slowest(now)))

    def acquire(self) -> tuple[int, int] | None:
        """(slot, token) of a free slot or one held past its lease, or None when `capacity` requests are in flight."""
        now = time.monotonic_ns()
        with self._locked():
            lease = self._lease(now)
            for slot in range(self.capacity):
                held_since = self._slot(slot)
                if held_since == 0 or now - held_since > lease:
                    self._set_slot(slot, now)
                    return slot, now
        return None

    def release(self, slot: int, token: int) -> None:
        """Free `slot` if it still holds `token` (a slot taken over may already belong to another request);
        the request's time in the ensemble feeds the lease."""
        if not 0 <= slot < self.capacity:
            return
        now = time.monotonic_ns()
        with self._locked():
            if self._slot(slot) != token:
                return
            self._set_slot(slot, 0)
            HEADER.pack_into(self._map, 0, max(now - token, self._slowest(now)), now)

    def in_flight(self) -> int:
        """Slots held and not past their lease."""
        now = time.monotonic_ns()
        with self._locked():
            lease = self._lease(now)
            return sum(1 for slot in range(self.capacity) if (since := self._slot(slot)) and now - since <= lease)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def open_gate(args: dict, step_suffix: str, capacity: int, max_lease_s: float) -> AdmissionGate | None:
    """The gate of the ensemble a Python-backend step belongs to (None when `capacity` is 0: no limit).

    `args` is what Triton hands `initialize`; the step's stub is a child of the server process.
    """
    if capacity <= 0:
        return None
    ensemble = args["model_name"].removesuffix(step_suffix)
    repository = os.path.dirname(os.path.realpath(args["model_repository"]))
    return AdmissionGate(gate_path(os.getppid(), repository, ensemble), capacity, max_lease_s)
