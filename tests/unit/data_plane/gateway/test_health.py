from __future__ import annotations

from data_plane.gateway.health import Failure, HealthPolicy, PassiveHealth

POLICY = HealthPolicy(failures_to_eject=3, cooldown_s=5, max_cooldown_s=20)


def test_connect_failure_ejects_at_once_and_cooldown_readmits() -> None:
    h = PassiveHealth(POLICY)
    assert h.record_failure(Failure.CONNECT, now=0)
    assert not h.available(4.9)
    assert h.available(5.0)


def test_timeouts_eject_after_a_run_and_success_resets() -> None:
    h = PassiveHealth(POLICY)
    assert not h.record_failure(Failure.TIMEOUT, 0)
    assert not h.record_failure(Failure.TIMEOUT, 0)
    h.record_success()
    assert not h.record_failure(Failure.STATUS, 0)
    assert not h.record_failure(Failure.STATUS, 0)
    assert h.record_failure(Failure.STATUS, 0)
    assert not h.available(1)


def test_failure_on_probation_doubles_the_cooldown_up_to_the_max() -> None:
    h = PassiveHealth(POLICY)
    h.record_failure(Failure.CONNECT, 0)
    assert h.available(5)
    assert h.record_failure(Failure.STATUS, 5)  # on probation: one failure is enough
    assert not h.available(14.9)
    assert h.available(15)
    h.record_failure(Failure.STATUS, 15)
    assert not h.available(34.9)
    assert h.available(35)
    h.record_failure(Failure.STATUS, 35)
    assert h.available(55)  # capped at 20 s


def test_success_on_probation_restores_the_base_cooldown() -> None:
    h = PassiveHealth(POLICY)
    h.record_failure(Failure.CONNECT, 0)
    h.available(5)
    h.record_failure(Failure.CONNECT, 5)
    h.available(15)
    h.record_success()
    h.record_failure(Failure.CONNECT, 20)
    assert h.available(25)


def test_failures_while_ejected_do_not_extend_it() -> None:
    h = PassiveHealth(POLICY)
    h.record_failure(Failure.CONNECT, 0)
    assert not h.record_failure(Failure.CONNECT, 3)
    assert h.available(5)


def test_failed_probes_in_a_row_mark_it_hung_until_a_probe_succeeds() -> None:
    h = PassiveHealth(POLICY)
    assert h.record_probe(False, failures_to_eject=2) is None
    assert h.record_probe(True, failures_to_eject=2) is None  # a success resets the run
    assert h.record_probe(False, 2) is None
    assert h.record_probe(False, 2) is True
    assert h.hung
    assert h.ejected
    assert not h.available(1e9)  # no cool-down: out until it answers
    assert h.record_probe(False, 2) is None
    assert not h.record_failure(Failure.CONNECT, 0)  # already out
    assert h.record_probe(True, 2) is False  # it answers again
    assert h.available(0)
    assert h.record_failure(Failure.STATUS, 0)  # on probation: one failure ejects it


def test_a_latency_ejection_uses_the_cool_down() -> None:
    h = PassiveHealth(POLICY)
    assert h.eject(now=0)
    assert not h.eject(now=1)  # already out
    assert not h.available(4.9)
    assert h.available(5)
