"""Sign-in, sessions, API tokens, CSRF and roles for the web process (docs/web.md).

Every route needs a user except those in PUBLIC. A browser carries a session cookie (HttpOnly,
SameSite=Lax, Secure over HTTPS); every unsafe request it makes must also carry the session's CSRF
token (form field `_csrf` or header `X-CSRF-Token`). Scripts send `Authorization: Bearer <token>`
(`pipeline users token`), which needs no CSRF token: a browser never adds that header by itself.
The sign-in form is guarded too (login CSRF: another site signing a visitor into its own account):
GET /login leaves a random token in a SameSite=Strict cookie scoped to /login and in the form, and
POST /login wants both, equal; a browser never sends a Strict cookie with another site's form."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import MediaType, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from markupsafe import Markup, escape

from web import users
from web.clock import utcnow
from web.errors import wants_json
from web.flows import Actor

COOKIE = "pipeline_session"
LOGIN_COOKIE = "pipeline_login"  # the sign-in form's own CSRF token (see above)
# Over HTTPS the token lives in a `__Host-` cookie (Secure, Path=/, no Domain): a browser takes it
# only from this very host over HTTPS, so a sibling subdomain or a plain-HTTP page cannot plant
# one of its own to sign a victim in to the attacker's account.
HOST_LOGIN_COOKIE = "__Host-pipeline_login"
LOGIN_FORM_STALE = "This sign-in form was stale or not sent by this site: sign in again"
PUBLIC = ["^/login$", "^/static/", "^/health$", "^/schema", "^/approvals/", "^/shared/reports/", "^/shared/packages/",
          "^/training-jobs/",
          "^/favicon.ico$"]
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Auth:
    via: str                 # "session", "token" or "proxy"
    csrf_token: str = ""
    secret: str = ""         # the session cookie's secret (to sign out)


class AuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        state = connection.app.state
        now = utcnow()
        header = connection.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            user = await users.token_user(state.pool, header[7:].strip(), now)
            if user is None:
                raise NotAuthorizedException("Unknown, revoked or disabled API token")
            return AuthenticationResult(user, Auth("token"))
        if state.settings.web.trust_identity_headers and connection.headers.get("x-pipeline-user"):
            return AuthenticationResult(_proxy_user(connection), Auth("proxy"))
        secret = connection.cookies.get(COOKIE)
        session = await users.session_of(state.pool, secret, now) if secret else None
        if session is None:
            raise NotAuthorizedException("Sign in first")
        return AuthenticationResult(session.user, Auth("session", session.csrf_token, secret))


def _proxy_user(connection: ASGIConnection) -> users.User:
    """Behind a proxy that authenticates users (PIPELINE_TRUST_IDENTITY_HEADERS=true) its
    X-Pipeline-User / X-Pipeline-Role headers say who acts."""
    name = connection.headers["x-pipeline-user"].strip()[:100]
    role = (connection.headers.get("x-pipeline-role") or "member").strip().lower()
    return users.User(name, name, None, role if role in users.ROLES else "member")


async def check_csrf(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """A guard on every route: unsafe requests made with a session cookie carry its CSRF token."""
    auth = connection.scope.get("auth")
    if connection.scope.get("method", "GET") in SAFE_METHODS or not isinstance(auth, Auth) or auth.via != "session":
        return
    sent = connection.headers.get("x-csrf-token")
    if sent is None and isinstance(connection, Request):
        content_type = connection.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            sent = (await connection.form()).get("_csrf")
    if not sent or not _same(str(sent), auth.csrf_token):
        raise PermissionDeniedException("The form was stale or not sent by this site (CSRF check failed):"
                                        " reload the page and try again")


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def user_of(connection: ASGIConnection) -> users.User | None:
    user = connection.scope.get("user")
    return user if isinstance(user, users.User) else None


def actor_of(connection: ASGIConnection) -> Actor:
    """Who acts: the signed-in user (routes without a user act as the anonymous member)."""
    user = user_of(connection)
    if user is not None:
        return Actor(user.name, user.role)
    if connection.app.state.settings.web.trust_identity_headers and connection.headers.get("x-pipeline-user"):
        proxied = _proxy_user(connection)
        return Actor(proxied.name, proxied.role)
    return Actor()


def require_manager(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    """A guard: managers and admins only (overrides, approvals, queue promotion, limits)."""
    if actor_of(connection).role not in ("manager", "admin"):
        raise PermissionDeniedException("Only managers and admins may do this")


def require_admin(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    if actor_of(connection).role != "admin":
        raise PermissionDeniedException("Only admins may do this")


# --- template helpers ----------------------------------------------------------------------

def csrf_field(context: dict[str, Any]) -> Markup:
    """`{{ csrf_field() }}` in every form that posts."""
    auth = context["request"].scope.get("auth")
    token = auth.csrf_token if isinstance(auth, Auth) else ""
    return Markup(f'<input type="hidden" name="_csrf" value="{escape(token)}">')


def csrf_token(context: dict[str, Any]) -> str:
    auth = context["request"].scope.get("auth")
    return auth.csrf_token if isinstance(auth, Auth) else ""


def current_user(context: dict[str, Any]) -> users.User | None:
    return user_of(context["request"])


def register_template_helpers(engine: Any) -> None:
    engine.register_template_callable("csrf_field", csrf_field)
    engine.register_template_callable("csrf_token", csrf_token)
    engine.register_template_callable("current_user", current_user)


# --- pages -------------------------------------------------------------------------------------

def local_path(target: object, default: str = "/") -> str:
    """Where to send someone back to: only a path on this site (never `//host`, `/\\host`, a scheme,
    or a header-splitting line break)."""
    text = target if isinstance(target, str) else ""
    if not text.startswith("/") or text.startswith(("//", "/\\")) or any(c in text for c in "\r\n\t\\"):
        return default
    parts = urlsplit(text)
    return default if parts.scheme or parts.netloc else text


@get("/login", media_type=MediaType.HTML, sync_to_thread=False)
def login_page(request: Request, next: FromQuery[str | None] = None, error: FromQuery[str | None] = None) -> Template:  # noqa: A002 - the query name
    return _login_form(request, {"next": local_path(next), "error": error})


@post("/login", media_type=MediaType.HTML)
async def login(request: Request) -> Response:
    form = await request.form()
    name, password, target = (str(form.get(k) or "") for k in ("username", "password", "next"))
    expected = request.cookies.get(_login_cookie_place(request)[0], "")
    if not expected or not _same(str(form.get("_login") or ""), expected):
        return _login_form(request, {"next": local_path(target), "error": LOGIN_FORM_STALE, "username": name[:64]},
                           status_code=403)
    try:
        secret, _ = await users.sign_in(request.app.state.pool, name, password, _client_ip(request),
                                        request.headers.get("user-agent"), utcnow())
    except (users.BadCredentialsError, users.TooManyAttemptsError) as exc:
        return _login_form(request, {"next": local_path(target), "error": str(exc), "username": name[:64]},
                           status_code=401 if isinstance(exc, users.BadCredentialsError) else 429)
    response = Redirect(local_path(target), status_code=303)
    response.set_cookie(_cookie(request, secret))
    cookie_name, path = _login_cookie_place(request)
    response.delete_cookie(cookie_name, path=path)
    return response


_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]{30,64}")


def _login_form(request: Request, context: dict[str, Any], status_code: int = 200) -> Template:
    """The sign-in page with its form token: the one the browser holds already (another tab's form
    stays good), else a new one."""
    name, path = _login_cookie_place(request)
    token = request.cookies.get(name, "")
    if not _TOKEN_TEXT.fullmatch(token):
        token = secrets.token_urlsafe(32)
    cookie = Cookie(key=name, value=token, path=path, httponly=True, samesite="strict", secure=_secure(request),
                    max_age=3600)
    return Template("login.html", context={**context, "login_token": token}, status_code=status_code, cookies=[cookie])


@post("/logout", media_type=MediaType.HTML)
async def logout(request: Request) -> Redirect:
    auth = request.scope.get("auth")
    if isinstance(auth, Auth) and auth.secret:
        await users.sign_out(request.app.state.pool, auth.secret)
    response = Redirect("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _cookie(request: Request, secret: str) -> Cookie:
    return Cookie(key=COOKIE, value=secret, path="/", httponly=True, samesite="lax", secure=_secure(request),
                  max_age=int(users.SESSION_MAX.total_seconds()))


def _login_cookie_place(request: Request) -> tuple[str, str]:
    """The sign-in token cookie's name and path: `__Host-…` on / when cookies are Secure."""
    return (HOST_LOGIN_COOKIE, "/") if _secure(request) else (LOGIN_COOKIE, "/login")


def _secure(request: Request) -> bool:
    mode = request.app.state.settings.web.cookie_secure
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def unauthorized(request: Request, exc: NotAuthorizedException) -> Response:
    """API callers get 401 JSON; people get the sign-in page, coming back here afterwards."""
    if wants_json(request):
        return Response({"status_code": 401, "detail": exc.detail}, status_code=401,
                        headers={"WWW-Authenticate": 'Bearer realm="lora-pipeline"'})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(target, safe='')}", status_code=303)


def forbidden(request: Request, exc: PermissionDeniedException) -> Response:
    if wants_json(request):
        return Response({"status_code": 403, "detail": exc.detail}, status_code=403)
    return Template("error.html", context={"title": "Not allowed", "message": exc.detail}, status_code=403)


routes = [login_page, login, logout]
