"""Sign-in, sessions, API tokens, CSRF and roles through the real web app (web/auth.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import psycopg

from tests.web_rig import PASSWORD, WebRig, login_token, sign_in, web  # noqa: F401 - the fixture
from web import users

HTML = {"Accept": "text/html"}


def test_pages_send_people_to_sign_in_and_back_and_the_api_answers_401(web: WebRig) -> None:
    anonymous = web.client()
    page = anonymous.get("/files?x=1", headers=HTML, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Ffiles%3Fx%3D1"
    assert anonymous.get("/api/jobs").status_code == 401
    assert anonymous.get("/api/jobs").json()["detail"] == "Sign in first"
    assert anonymous.get("/health").status_code in (200, 503)  # public
    signed_in = sign_in(anonymous, "Alice", next="/files?x=1", follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/files?x=1"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("SameSite=Lax", "SameSite=lax")
    assert "Alice" in anonymous.get("/files", headers=HTML).text


def test_a_wrong_password_is_refused_with_one_message_and_guessing_is_stopped(web: WebRig) -> None:
    client = web.client()
    for name in ("alice", "nobody"):
        wrong = sign_in(client, name, "nope")
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    for _ in range(users.FAILURES_ALLOWED):
        sign_in(client, "carol", "nope")
    stopped = sign_in(client, "carol")
    assert stopped.status_code == 429 and "Too many failed sign-ins" in stopped.text


def test_the_next_parameter_never_leaves_the_site(web: WebRig) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        answer = sign_in(web.client(), "alice", next=target, follow_redirects=False)
        assert answer.headers["location"] == "/", target


def test_forms_without_the_session_csrf_token_are_refused_and_change_nothing(web: WebRig) -> None:
    alice = web.client("alice")
    refused = alice.post("/jobs/bulk-cancel", data={"job_id": "00000000-0000-0000-0000-000000000001",
                                                    "reason": "testing", "confirm": "yes"},
                         headers=HTML, follow_redirects=False)
    assert refused.status_code == 403 and "CSRF check failed" in refused.text
    forged = alice.post("/logout", data={"_csrf": "guess"}, follow_redirects=False)
    assert forged.status_code == 403
    assert alice.get("/api/jobs").status_code == 200  # still signed in
    out = web.form("alice", "/logout", {})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert alice.get("/api/jobs").status_code == 401  # the session is gone on the server


def test_json_calls_with_a_session_need_the_csrf_header_but_tokens_do_not(web: WebRig) -> None:
    body = {"reason": "testing", "notes": ""}
    job = "00000000-0000-0000-0000-000000000002"
    assert web.client("alice").post(f"/api/jobs/{job}/cancel", json=body).status_code == 403
    with_header = web.client("alice").post(f"/api/jobs/{job}/cancel", json=body,
                                           headers={"X-CSRF-Token": web.csrf("alice")})
    assert with_header.status_code == 404  # past the CSRF check: there is no such job
    bearer = web.client().post(f"/api/jobs/{job}/cancel", json=body, headers=web.token("alice"))
    assert bearer.status_code == 404
    assert web.client().get("/api/jobs", headers={"Authorization": "Bearer lpt_wrong"}).status_code == 401


def test_disabled_users_lose_their_sessions_and_tokens(web: WebRig) -> None:
    token = web.token("carol")
    carol = web.client("carol")
    assert carol.get("/api/jobs").status_code == 200
    with psycopg.connect(web.database_url, autocommit=True) as conn:
        users.set_disabled(conn, "carol", True)
    assert carol.get("/api/jobs").status_code == 401
    assert web.client().get("/api/jobs", headers=token).status_code == 401
    again = sign_in(web.client(), "carol")
    assert again.status_code == 401


def test_manager_only_actions_are_refused_to_members_on_the_server(web: WebRig) -> None:
    job = "00000000-0000-0000-0000-000000000003"
    assert web.client().post(f"/api/jobs/{job}/faults", json={"action": "preempt"},
                             headers=web.token("bob")).status_code == 403  # admins only
    member = web.client().post(f"/api/jobs/{job}/promote", headers=web.token("alice"))
    assert member.status_code in (403, 404)


def test_pages_carry_security_headers(web: WebRig) -> None:
    page = web.client("alice").get("/jobs", headers=HTML)
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_the_users_cli_adds_lists_and_refuses_bad_input(migrated: str, tmp_path) -> None:
    env = os.environ | {"DATABASE_URL": migrated, "NATS_URL": "nats://127.0.0.1:1", "PIPELINE_STATE_DIR": str(tmp_path)}

    def pipeline(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline", "users", *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=120)

    added = pipeline("add", "dana", "--role", "manager", "--email", "dana@example.com")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("added dana (manager)\npassword: ")
    assert pipeline("add", "dana").stderr.strip() == "pipeline: error: User dana already exists"
    assert pipeline("add", "Bad Name").returncode == 2
    short = pipeline("add", "erin", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    assert pipeline("add", "erin", "--password-stdin", stdin="a long enough password\n").returncode == 0
    listed = pipeline("list").stdout.splitlines()
    assert listed == ["dana\tmanager\tactive\tdana@example.com\tdana", "erin\tmember\tactive\t\terin"]
    token = pipeline("token", "erin")
    assert token.returncode == 0 and token.stdout.startswith("lpt_")
    with psycopg.connect(migrated) as conn:
        assert conn.execute("SELECT count(*) FROM api_tokens").fetchone()[0] == 1
        stored = conn.execute("SELECT password_hash FROM users WHERE name = 'erin'").fetchone()[0]
    assert stored.startswith("scrypt$") and "a long enough password" not in stored
    assert pipeline("role", "nobody", "admin").stderr.strip() == "pipeline: error: No user nobody"


def test_the_sign_in_form_must_come_from_this_site(web: WebRig) -> None:
    """Login CSRF: another site's form posting someone's credentials (the attacker's) gets no
    session: it has neither the form's token nor the SameSite=Strict cookie that holds it."""
    forged = web.client().post("/login", data={"username": "alice", "password": PASSWORD, "next": "/"},
                               follow_redirects=False)
    assert forged.status_code == 403 and "sign-in form was stale or not sent by this site" in forged.text
    assert "pipeline_session" not in forged.headers.get("set-cookie", "")
    page = web.client().get("/login")
    cookie = page.headers["set-cookie"]
    assert "pipeline_login=" in cookie and "Path=/login" in cookie and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    guessed = web.client().post("/login", data={"username": "alice", "password": PASSWORD, "_login": "x" * 43},
                                follow_redirects=False)
    assert guessed.status_code == 403
    from litestar.testing import TestClient

    from web.app import create_app

    token = re.search(r'name="_login" value="([^"]+)"', page.text).group(1)
    with TestClient(create_app(web.settings, web.database_url, web.nats_url)) as elsewhere:  # the token, no cookie
        stolen = elsewhere.post("/login", data={"username": "alice", "password": PASSWORD, "_login": token},
                                follow_redirects=False)
    assert stolen.status_code == 403
    assert sign_in(web.client(), "alice", follow_redirects=False).status_code == 303
    assert web.client().get("/login").headers["set-cookie"] != cookie  # used up: a new token next time
    planted = web.client()
    planted.cookies.set("pipeline_login", "short", path="/login")
    assert "short" not in login_token(planted)  # only a token of our own form is kept


def test_over_https_the_sign_in_token_is_a_host_only_secure_cookie(web: WebRig) -> None:
    """A `__Host-` cookie cannot be planted by a sibling subdomain or a plain-HTTP page."""
    from litestar.testing import TestClient

    from web.app import create_app

    settings = web.settings.model_copy(update={"web": web.settings.web.model_copy(update={"cookie_secure": "always"})})
    with TestClient(create_app(settings, web.database_url, web.nats_url), base_url="https://testserver") as client:
        page = client.get("/login")
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("__Host-pipeline_login=") and "Path=/;" in cookie and "Secure" in cookie
        assert "Domain" not in cookie and "samesite=strict" in cookie.lower()
        signed = sign_in(client, "alice", follow_redirects=False)
        assert signed.status_code == 303 and "pipeline_session=" in signed.headers.get("set-cookie", "")
        token = login_token(client)
        client.cookies.clear()
        client.cookies.set("pipeline_login", token, path="/login")  # the plain name is not read over HTTPS
        refused = client.post("/login", data={"username": "alice", "password": PASSWORD, "_login": token},
                              follow_redirects=False)
        assert refused.status_code == 403


def test_an_unknown_address_shows_the_404_page_to_a_browser_and_json_to_the_api(web: WebRig) -> None:
    for client in (web.client("alice"), web.client()):  # signed in, and signed out
        page = client.get("/no/such/page", headers={"Accept": "text/html"})
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "<h1>Page not found</h1>" in page.text and "There is no page at /no/such/page." in page.text
        assert 'class="topbar"' in page.text and '<a href="/">Home</a>' in page.text  # the layout, and home
        assert '{"status_code"' not in page.text
    api = web.client().get("/api/no-such-thing", headers={"Accept": "text/html", **web.token("alice")})
    assert api.status_code == 404 and api.json() == {"status_code": 404, "detail": "Not Found"}
    script = web.client().get("/no/such/page")  # no Accept: text/html, as curl sends
    assert script.status_code == 404 and script.json()["status_code"] == 404
