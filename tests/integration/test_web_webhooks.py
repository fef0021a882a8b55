"""Webhook endpoints on the web (#20): the JSON API (`/api/webhooks`) and the notification settings
page, for managers and admins only; the secret in the answer that made it and nowhere after."""

from __future__ import annotations

import re

import psycopg

from handlers.webhooks import store
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

HTML = {"Accept": "text/html"}
PAGE = "/settings/notifications"
HOOK = "https://hooks.acme.example/ml-events"


def test_a_manager_registers_lists_rotates_and_deletes_an_endpoint_through_the_api(web: WebRig) -> None:
    client, bob = web.client(), web.token("bob")
    made = client.post("/api/webhooks", json={"url": HOOK, "events": ["pipeline.job.paused",
                                                                      "fine_tuning.job.succeeded"],
                                              "description": "ML platform"}, headers=bob)
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"  # the secret is kept by no cache or history
    endpoint = made.json()
    secret = endpoint.pop("secret")
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    assert endpoint["events"] == ["fine_tuning.job.succeeded", "pipeline.job.paused"]  # the catalogue's order

    listed = client.get("/api/webhooks", headers=bob)
    assert [e["id"] for e in listed.json()] == [endpoint["id"]] and secret not in listed.text
    assert "secret" not in client.get(f"/api/webhooks/{endpoint['id']}", headers=bob).text
    types = client.get("/api/webhooks/event-types", headers=bob).json()
    assert types[0] == {"type": "fine_tuning.job.succeeded", "label": "Job succeeded"}

    rotated = client.post(f"/api/webhooks/{endpoint['id']}/rotate-secret", headers=bob)
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (secret, None)
    assert rotated.headers["cache-control"] == "no-store"
    with psycopg.connect(web.database_url) as conn:
        stored = conn.execute("SELECT secret_sealed || coalesce(previous_sealed, '') FROM webhook_endpoints"
                              ).fetchone()[0]
    assert secret[6:] not in stored and rotated.json()["secret"][6:] not in stored
    assert client.get(f"/api/webhooks/{endpoint['id']}/deliveries", headers=bob).json() == []

    assert client.delete(f"/api/webhooks/{endpoint['id']}", headers=bob).status_code == 204
    assert client.get("/api/webhooks", headers=bob).json() == []
    gone = client.post(f"/api/webhooks/{endpoint['id']}/rotate-secret", headers=bob)
    assert gone.status_code == 404 and gone.json()["detail"] == f"There is no webhook endpoint {endpoint['id']}"


def test_members_may_not_touch_webhooks_and_a_bad_endpoint_is_refused_naming_its_field(web: WebRig) -> None:
    client = web.client()
    refused = client.post("/api/webhooks", json={"url": HOOK, "events": ["fine_tuning.job.failed"]},
                          headers=web.token("alice"))
    assert refused.status_code == 403
    assert client.get("/api/webhooks", headers=web.token("alice")).status_code == 403
    bad = client.post("/api/webhooks", json={"url": "hooks.example.com", "events": ["fine_tuning.job.failed"]},
                      headers=web.token("root"))
    assert bad.status_code == 400 and bad.json()["detail"].startswith("url: an http:// or https:// address")
    unknown = client.post("/api/webhooks", json={"url": HOOK, "events": ["job.done"]}, headers=web.token("root"))
    assert unknown.status_code == 400 and "events: unknown event type 'job.done'" in unknown.json()["detail"]


def test_the_settings_page_adds_an_endpoint_shows_its_secret_once_and_logs_and_redelivers(web: WebRig) -> None:
    assert 'id="webhooks"' not in web.client("alice").get(PAGE, headers=HTML).text  # a member sees no webhooks
    added = web.form("bob", f"{PAGE}/webhooks", {"url": HOOK, "events": ["fine_tuning.job.failed"],
                                                 "description": "On-call"})
    assert added.status_code == 201 and added.headers["cache-control"] == "no-store"
    secret = re.search(r'<code class="secret">(whsec_[^<]+)</code>', added.text).group(1)
    assert "it is not shown again" in added.text
    page = web.client("bob").get(PAGE, headers=HTML).text
    assert HOOK in page and "On-call" in page and secret not in page and "fine_tuning.job.failed" in page

    refused = web.form("bob", f"{PAGE}/webhooks", {"url": "ftp://x", "events": ["fine_tuning.job.failed"]})
    assert refused.status_code == 400 and "url: an http:// or https:// address" in refused.text
    assert 'value="ftp://x"' in refused.text  # the form as sent, to correct

    with psycopg.connect(web.database_url) as conn:
        [endpoint] = store.endpoints(conn, web.settings.budget.team)
        conn.execute("INSERT INTO webhook_deliveries (endpoint_id, event_key, event_id, event_type, body, status,"
                     " attempts) VALUES (%s, 'j:9', 'evt_1', 'fine_tuning.job.failed', '{}', 'failed', 10)",
                     (endpoint["id"],))
        conn.commit()
        [delivery] = store.deliveries(conn, web.settings.budget.team)
    logged = web.client("bob").get(PAGE, headers=HTML).text
    assert f'data-delivery-id="{delivery["id"]}"' in logged and 'class="delivery-failed"' in logged
    again = web.form("bob", f"{PAGE}/webhooks/deliveries/{delivery['id']}/redeliver", {})
    assert again.status_code == 303
    with psycopg.connect(web.database_url) as conn:
        assert store.deliveries(conn, web.settings.budget.team)[0]["status"] == "pending"
    rotated = web.form("bob", f"{PAGE}/webhooks/{endpoint['id']}/rotate", {})
    assert rotated.status_code == 200 and "the old one also signs for 24 hours" in rotated.text
    assert rotated.headers["cache-control"] == "no-store" and secret not in rotated.text
    assert web.form("bob", f"{PAGE}/webhooks/{endpoint['id']}/delete", {}).status_code == 303
    assert HOOK not in web.client("bob").get(PAGE, headers=HTML).text.split('id="webhook-deliveries"')[0]
