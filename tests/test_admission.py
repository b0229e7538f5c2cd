"""The admission gate on its own: one count shared by processes, tokens, leases."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from pathlib import Path

import pytest
from focoos.builder.python_models import admission
from focoos.builder.python_models.admission import AdmissionGate, gate_path

CAPACITY = 3


def _take_all(path: str, start: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue) -> None:
    gate = AdmissionGate(path, CAPACITY, max_lease_s=60.0)
    start.wait(60)  # every process tries at once, well within the one-second minimum lease
    taken = [gate.acquire() for _ in range(CAPACITY + 2)]
    results.put(sum(t is not None for t in taken))
    gate.close()


def test_processes_share_one_count(tmp_path: Path):
    path, spawn = str(tmp_path / "gate"), multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(4), spawn.Queue()
    workers = [spawn.Process(target=_take_all, args=(path, start, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sum(results.get(timeout=10) for _ in workers) == CAPACITY  # four processes, three slots in all


def test_release_frees_only_the_slot_that_holds_the_token(tmp_path: Path):
    gate = AdmissionGate(str(tmp_path / "gate"), 1, max_lease_s=60.0)
    slot, token = gate.acquire()
    assert gate.acquire() is None
    gate.release(slot, token + 1)  # a stale token (the lease expired and the slot moved on) frees nothing
    gate.release(CAPACITY + 7, token)  # nor does a slot that does not exist
    assert gate.acquire() is None
    gate.release(slot, token)
    assert gate.in_flight() == 0 and gate.acquire() is not None


class FakeClock:
    """time.monotonic_ns of the gate, moved by hand (seconds)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now_s = 100.0
        monkeypatch.setattr(admission.time, "monotonic_ns", lambda: int(self.now_s * 1e9))


def test_a_slot_held_past_its_lease_is_taken_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No history: the lease is the minimum, one second."""
    clock = FakeClock(monkeypatch)
    gate = AdmissionGate(str(tmp_path / "gate"), 1, max_lease_s=60.0)
    first = gate.acquire()
    clock.now_s += 0.9
    assert gate.acquire() is None and gate.in_flight() == 1
    clock.now_s += 0.2
    second = gate.acquire()  # the first request never came back
    assert first is not None and second is not None and second[1] > first[1]
    gate.release(*first)  # the late first request cannot free the slot the second one holds now
    assert gate.acquire() is None
    with pytest.raises(ValueError, match="capacity"):
        AdmissionGate(str(tmp_path / "other"), 0, max_lease_s=1.0)


def test_the_lease_follows_the_slowest_recent_request_within_its_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Four times the slowest recent request (its time halves every 10 s), at least 1 s, at most the cap."""
    clock = FakeClock(monkeypatch)
    for max_lease_s, still_held_s, taken_over_s in ((60.0, 3.0, 7.0), (3.0, 1.5, 3.1)):
        gate = AdmissionGate(str(tmp_path / f"gate-{max_lease_s}"), 1, max_lease_s=max_lease_s)
        slow = gate.acquire()
        clock.now_s += 2.0
        gate.release(*slow)  # a 2 s request
        gate.acquire()  # one that never comes back
        clock.now_s += still_held_s
        assert gate.acquire() is None  # past the 1 s minimum, within 4 x 2 s (decayed) and the cap
        clock.now_s += taken_over_s - still_held_s
        assert gate.acquire() is not None
    clock.now_s += 40.0  # four half-lives: the 2 s count for 0.125 s, the lease is back at its minimum
    gate.acquire()
    clock.now_s += 1.1
    assert gate.acquire() is not None


def test_each_server_and_ensemble_has_its_own_gate():
    paths = {gate_path(1, "/repo", "a"), gate_path(2, "/repo", "a"), gate_path(1, "/repo", "b"),
             gate_path(1, "/other", "a")}
    assert len(paths) == 4
