"""FR4.1.2 adapter storage on real PostgreSQL and NATS: the job page's adapter facts (path, size,
upload time, downloads), the storage dashboard's totals, and deleting adapters — refused without a
reason, a confirmation or the right person, recorded on the job, the file removed, downloads then
410 — one at a time or in bulk."""

from __future__ import annotations

import asyncio
import re
from uuid import UUID

import psycopg
import pytest

from infra import bus
from infra.objectstore import ArtifactMissingError, ObjectStore
from tests.integration.test_web_job_detail import add_job, ago, run, training
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

HTML = {"Accept": "text/html"}
REASON = "Superseded by v4, freeing storage"


def completed_with_adapter(web: WebRig, name: str, size: int) -> tuple[UUID, object]:
    job = add_job(web, name=name)  # alice's
    training(web, job)
    ref = web.store_adapter(job, b"a" * size)
    run(web, job, lambda j: j.complete(ref, {"final_loss": 0.31}, 1, ago(0)))
    return job, ref


def stored(web: WebRig, ref: object) -> bool:
    async def check() -> bool:
        nc = await bus.connect(web.nats_url, "test-storage-check")
        try:
            await ObjectStore(nc.jetstream()).check(ref)
            return True
        except ArtifactMissingError:
            return False
        finally:
            await nc.close()

    return asyncio.run(check())


def test_the_adapter_facts_the_dashboard_and_deleting_one_with_its_audit_record(web: WebRig) -> None:
    job, ref = completed_with_adapter(web, "Advisor v3", 250_000)
    web.client("alice").get(f"/jobs/{job}/adapter")  # one download
    web.project()
    page = web.client("alice").get(f"/jobs/{job}", headers=HTML).text
    section = page[page.index('id="jd-adapter"'):].split("</section>")[0]
    assert f"<code>{ref.bucket}/{ref.name}</code>" in section and "250 KB" in section
    assert re.search(r"<dt>Downloads</dt><dd>1</dd>", section)
    dashboard = web.client("bob").get("/storage", headers=HTML).text
    assert 'id="storage-total">250 KB<' in dashboard and 'id="storage-models">1<' in dashboard

    def delete(user: str, data: dict) -> str:
        answer = web.form(user, f"/jobs/{job}/adapter/delete", data)
        assert answer.status_code == 303
        return answer.headers["location"]

    assert "Tick+the+confirmation" in delete("alice", {"reason": REASON})
    assert "creator%2C+a+manager+or+an+admin" in delete("carol", {"reason": REASON, "confirm": "yes"})
    assert "at+least+10+characters" in delete("alice", {"reason": "old", "confirm": "yes"})
    assert stored(web, ref) and web.store.app.get_job(job).adapter_deleted is None
    assert "notice=Adapter+deleted" in delete("alice", {"reason": REASON, "confirm": "yes"})
    assert not stored(web, ref)
    assert delete("alice", {"reason": REASON, "confirm": "yes"}).endswith("notice=Adapter+deleted")  # again: nothing
    events = [s.topic for s in web.store.app.recorder.select_events(job)]
    assert events.count("TrainingJob.AdapterDeleted") == 1
    gone = web.client("alice").get(f"/jobs/{job}/adapter", headers=HTML)
    assert gone.status_code == 410 and f"by alice: {REASON}" in gone.text
    assert web.client("alice").get(f"/jobs/{job}/deployment-package", headers=HTML).status_code == 410
    web.project()
    with psycopg.connect(web.database_url) as conn:
        logged = conn.execute("SELECT category, message FROM event_log WHERE job_id = %s AND topic ="
                              " 'TrainingJob.AdapterDeleted'", (job,)).fetchall()
    assert logged == [("warning", f"Adapter {ref.name} deleted by alice: {REASON}")]
    page = web.client("alice").get(f"/jobs/{job}", headers=HTML).text
    assert 'id="jd-adapter-deleted"' in page and 'id="jd-adapter-delete"' not in page
    assert f'href="/jobs/{job}/adapter"' not in page and 'id="jd-report"' in page  # the report stays
    no_link = web.form("alice", f"/jobs/{job}/deployment-package/share", {}, headers=HTML)
    assert no_link.status_code == 410 and "was deleted" in no_link.text
    dashboard = web.client("bob").get("/storage", headers=HTML).text
    assert 'id="storage-models">0<' in dashboard and "1 deleted" in dashboard


def test_a_manager_deletes_several_adapters_at_once(web: WebRig) -> None:
    jobs = [completed_with_adapter(web, f"Old run {n}", 10_000 * (n + 1)) for n in range(3)]
    web.project()
    # A member may delete only her own: carol's bulk request stops at alice's first job.
    refused = web.form("carol", "/storage/delete", {"job": [str(jobs[0][0])], "reason": REASON, "confirm": "yes"})
    assert "creator%2C+a+manager+or+an+admin" in refused.headers["location"]
    chosen = [str(jobs[0][0]), str(jobs[2][0])]
    refused = web.form("bob", "/storage/delete", {"job": chosen, "reason": REASON})
    assert "Tick+the+confirmation" in refused.headers["location"]
    done = web.form("bob", "/storage/delete", {"job": chosen, "reason": REASON, "confirm": "yes"})
    assert done.headers["location"].endswith("notice=2+adapters+deleted")
    assert [stored(web, ref) for _, ref in jobs] == [False, True, False]
    web.project()
    dashboard = web.client("bob").get("/storage", headers=HTML).text
    assert 'id="storage-models">1<' in dashboard and 'id="storage-total">20.0 KB<' in dashboard
    nothing = web.form("bob", "/storage/delete", {"reason": REASON, "confirm": "yes"})
    assert "Choose+at+least+one" in nothing.headers["location"]


@pytest.mark.parametrize("value, shown", [(999, "999 B"), (15_300_000_000, "15.3 GB"), (665_000_000, "665 MB")])
def test_sizes_read_as_storage_is_billed(value: int, shown: str) -> None:
    from web.adapter_storage import size

    assert size(value) == shown
