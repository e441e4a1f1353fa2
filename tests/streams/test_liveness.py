"""The progress watch separates a stalled consumer from an idle or busy one."""

from __future__ import annotations

from aiokafka.structs import TopicPartition

from streams.liveness import ProgressWatch

A = TopicPartition("activity", 0)
B = TopicPartition("activity", 1)


def test_idle_worker_never_stalls() -> None:
    watch = ProgressWatch(stall_timeout_s=10)
    for second in range(0, 100, 5):
        assert watch.observe({A: 7, B: 3}, {A: 7, B: 3}, float(second)) is False


def test_moving_offsets_never_stall() -> None:
    watch = ProgressWatch(stall_timeout_s=10)
    for second in range(0, 100, 5):
        assert watch.observe({A: second, B: 0}, {A: 1000, B: 0}, float(second)) is False


def test_waiting_records_without_progress_stall() -> None:
    watch = ProgressWatch(stall_timeout_s=10)
    assert watch.observe({A: 5}, {A: 9}, 0.0) is False
    assert watch.observe({A: 5}, {A: 9}, 5.0) is False
    assert watch.observe({A: 5}, {A: 9}, 9.9) is False
    assert watch.observe({A: 5}, {A: 9}, 10.0) is True


def test_progress_resets_the_clock() -> None:
    watch = ProgressWatch(stall_timeout_s=10)
    watch.observe({A: 5}, {A: 9}, 0.0)
    watch.observe({A: 5}, {A: 9}, 5.0)
    assert watch.observe({A: 6}, {A: 9}, 9.0) is False
    assert watch.observe({A: 6}, {A: 9}, 18.9) is False
    assert watch.observe({A: 6}, {A: 9}, 19.0) is True
