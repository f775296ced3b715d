from services.common.inflight import InflightWindow, PartitionWindow


def test_commit_waits_for_the_oldest_unfinished_offset() -> None:
    window = PartitionWindow()
    for offset in (10, 11, 12):
        window.start(offset)
    window.finish(12)
    window.finish(11)
    assert window.uncommitted() is None  # 10 is still running
    window.finish(10)
    assert window.uncommitted() == 13
    assert window.in_flight == 0


def test_a_committed_offset_is_not_offered_again_until_the_window_moves() -> None:
    window = PartitionWindow()
    window.start(0)
    window.finish(0)
    assert window.uncommitted() == 1
    window.committed(1)
    assert window.uncommitted() is None
    window.start(1)
    window.finish(1)
    assert window.uncommitted() == 2


def test_a_failed_commit_is_offered_again() -> None:
    window = PartitionWindow()
    window.start(5)
    window.finish(5)
    assert window.uncommitted() == 6
    # no committed() call: the commit failed
    assert window.uncommitted() == 6


def test_partitions_are_independent_and_revoked_ones_are_forgotten() -> None:
    window: InflightWindow[str] = InflightWindow()
    window.start("a", 0)
    window.start("b", 0)
    window.start("b", 1)
    window.finish("b", 1)
    assert window.uncommitted() == {}
    window.finish("a", 0)
    assert window.uncommitted() == {"a": 1}
    window.forget({"b"})
    assert window.in_flight == 0
    window.finish("b", 0)  # late finish of a revoked partition is ignored
    assert "b" not in window.uncommitted()
