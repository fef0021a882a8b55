"""Many jobs reserving one budget at once on real PostgreSQL: no overspend, no lost update."""

import threading
from decimal import Decimal

from domain.aggregates.budget import BudgetExceededError
from infra.eventstore import EventStore
from tests.factories import T0, configuration, job_fields


def test_twenty_concurrent_starts_never_overspend_and_every_loser_gets_the_budget_error(migrated: str) -> None:
    setup = EventStore.open(migrated)
    job_ids = []
    for i in range(20):
        job_id = setup.app.create_job(**job_fields(name=f"Concurrent {i}"))
        setup.app.configure_job(job_id, **configuration(estimated_cost_max=Decimal(40)))
        job_ids.append(job_id)
    setup.close()

    stores = [EventStore.open(migrated, pool_size=1) for _ in range(20)]
    barrier = threading.Barrier(20)
    outcomes: dict[int, str] = {}

    def start(i: int) -> None:
        barrier.wait()
        try:
            stores[i].app.start_job(job_ids[i], "alice", "member", T0)
            outcomes[i] = "started"
        except BudgetExceededError:
            outcomes[i] = "refused"
        except Exception as exc:  # noqa: BLE001 - reported by the assertion  # pragma: no cover
            outcomes[i] = f"error: {exc!r}"

    threads = [threading.Thread(target=start, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()

    check = EventStore.open(migrated)
    budget = check.app.budget("2026-11")
    started = [i for i, outcome in outcomes.items() if outcome == "started"]
    assert sorted(set(outcomes.values())) == ["refused", "started"], outcomes
    assert len(started) == 13  # 13 × $40 = $520 ≤ $500 + 10 % grace < 14 × $40
    assert budget.reserved == Decimal(40) * len(started) <= budget.ceiling
    assert {str(job_ids[i]) for i in started} == set(budget.reservations)
    assert all(check.app.get_job(job_ids[i]).status == "queued" for i in started)
    assert all(check.app.get_job(job_ids[i]).status == "configured" for i in outcomes if i not in started)
    check.close()
