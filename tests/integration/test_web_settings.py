"""The notification settings page (FR8.2.1, FR7.2.2): a user's own preferences, the team's
settings for managers only, the JSON API's validation messages and escaped values."""

from __future__ import annotations

import psycopg
from markupsafe import escape

from handlers.notifications.preferences import EVENT_GROUPS, TeamSettings, get_preferences, get_team
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

HTML = {"Accept": "text/html"}
PATH = "/settings/notifications"


def stored(web: WebRig, user: str):
    with psycopg.connect(web.database_url) as conn:
        return get_preferences(conn, user)


def team(web: WebRig) -> TeamSettings:
    with psycopg.connect(web.database_url) as conn:
        return get_team(conn, web.settings.budget.team)


def test_a_user_saves_their_own_preferences(web: WebRig) -> None:
    page = web.client("alice").get(PATH, headers=HTML)
    assert page.status_code == 200
    assert 'id="my-preferences"' in page.text and 'id="team-settings"' not in page.text
    assert "your account's address is alice@example.com" in page.text
    saved = web.form("alice", PATH, {"email": "Alice@Work.example", "channels": ["email", "slack"],
                                     "choice": "failures", "digest": "daily",
                                     "slack_webhook_url": "https://hooks.example/alice"})
    assert saved.status_code == 303 and saved.headers["location"].startswith(PATH)
    mine = stored(web, "alice")
    assert mine.email == "alice@work.example" and mine.channels == ("email", "slack")
    assert mine.events == EVENT_GROUPS["failures"] and mine.digest == "daily"
    shown = web.client("alice").get(saved.headers["location"], headers=HTML).text
    assert "Your notification preferences were saved" in shown
    assert 'value="alice@work.example"' in shown and 'value="failures" checked' in shown
    assert 'value="daily" checked' in shown and 'value="slack" checked' in shown
    custom = web.form("alice", PATH, {"email": "", "channels": ["email"], "choice": "custom",
                                      "events": ["completed", "interrupted"], "digest": "off"})
    assert custom.status_code == 303
    assert stored(web, "alice").events == ("completed", "interrupted") and stored(web, "alice").email is None
    assert stored(web, "carol").events == EVENT_GROUPS["all"]  # nobody else's changed


def test_invalid_preferences_show_the_json_apis_messages_and_save_nothing(web: WebRig) -> None:
    api = web.client().put("/api/notification-preferences/alice", json={"email": "nope"}, headers=web.token("alice"))
    assert api.status_code == 400
    for form, message in (({"email": "nope"}, api.json()["detail"]),
                          ({"slack_webhook_url": "ftp://x"}, "the Slack webhook must be an http(s) URL"),
                          ({"channels": ["fax"]}, "unknown channel fax; known: email, slack"),
                          ({"digest": "weekly"}, "unknown digest mode weekly; known: off, daily"),
                          ({"choice": "custom", "events": ["exploded"]}, "unknown event exploded")):
        sent = {"choice": "all", "digest": "off", "channels": ["email"], **form}
        answer = web.form("alice", PATH, sent, headers=HTML)
        assert answer.status_code == 400, form
        assert str(escape(message)) in answer.text, (form, message)
    assert stored(web, "alice").digest == "off" and stored(web, "alice").email is None
    escaped = web.form("alice", PATH, {"email": "<script>x</script>@a.b", "choice": "all"}, headers=HTML)
    assert escaped.status_code == 400 and "<script>x</script>" not in escaped.text
    assert 'value="&lt;script&gt;x&lt;/script&gt;@a.b"' in escaped.text


def test_only_managers_see_and_change_the_team_settings(web: WebRig) -> None:
    refused = web.form("alice", f"{PATH}/team", {"slack_channel": "#hijack", "manager_emails": "evil@x.com"},
                       headers=HTML)
    assert refused.status_code == 403 and "Only managers and admins may do this" in refused.text
    assert team(web) == TeamSettings(web.settings.budget.team)
    page = web.client("bob").get(PATH, headers=HTML).text
    assert 'id="team-settings"' in page
    bad = web.form("bob", f"{PATH}/team", {"manager_emails": "boss@x.com, not-an-address"}, headers=HTML)
    assert bad.status_code == 400 and "not an email address: &#39;not-an-address&#39;" in bad.text
    assert team(web) == TeamSettings(web.settings.budget.team)
    saved = web.form("root", f"{PATH}/team", {"slack_channel": "<script>alert(1)</script>",
                                              "slack_webhook_url": "https://hooks.example/team",
                                              "manager_emails": "Boss@X.com\nsecond@x.com, boss@x.com",
                                              "finance_emails": "money@x.com", "budget_digest": "on"})
    assert saved.status_code == 303
    assert team(web) == TeamSettings(web.settings.budget.team, "https://hooks.example/team",
                                     "<script>alert(1)</script>", ("boss@x.com", "second@x.com"), ("money@x.com",),
                                     budget_digest=True)
    shown = web.client("bob").get(PATH, headers=HTML).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>alert(1)" not in shown
    assert "boss@x.com\nsecond@x.com</textarea>" in shown
    assert 'name="budget_digest" id="budget-digest" checked' in shown


def test_a_nul_character_in_a_setting_is_refused_by_its_name_and_nothing_is_saved(web: WebRig) -> None:
    before = team(web)
    api = web.client().put("/api/notification-team-settings", json={"slack_channel": "#ml\x00-team"},
                           headers=web.token("bob"))
    assert api.status_code == 400
    assert api.json()["detail"] == "slack_channel contains a NUL character (U+0000) at character 4: remove it"
    page = web.form("alice", PATH, {"email": "alice\x00@example.com", "channels": "email"}, headers=HTML)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "The field email contains a NUL character (U+0000) at character 6: remove it" in page.text
    assert "PostgreSQL" not in api.text + page.text
    assert team(web) == before and stored(web, "alice").email != "alice\x00@example.com"
    dismissed = web.client().post("/api/banners/a%00b/dismiss", headers=web.token("alice"))
    assert dismissed.status_code == 400
    assert dismissed.json()["detail"] == "The address part key contains a NUL character (U+0000) at character 2:" \
                                         " remove it"
