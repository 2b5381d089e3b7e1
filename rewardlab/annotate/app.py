"""The annotation web app: sign in, rank one task at a time, skip and come back; an admin page.

`create_app(store)` builds a FastAPI app of server-rendered pages (Jinja2 templates with
autoescaping, so response text is shown as text, never run as HTML) and one local script for drag
and keyboard ranking; no asset comes from a CDN. `rewardlab annotate serve` runs it with uvicorn on
127.0.0.1. Its routes come in four routers over one `_Web` (the store, the templates, the session
helpers): sign-in (`_auth_routes`), an annotator's pages (`_task_routes`), the ranking forms
(`_ranking_routes`) and the admin pages (`_admin_routes`).

Safety: sessions are HMAC-signed cookies (HttpOnly, SameSite=Lax); signing out revokes every cookie
of that user server-side (the user's session epoch is bumped), so a copied cookie stops working;
failed sign-ins are throttled per name and per client address (`LoginThrottle`); every form carries
the session's CSRF token and a POST without it is refused; an annotator only reaches their own
assignments (any other id is a 404) and admin pages answer 403 to non-admins; a
Content-Security-Policy allows only the app's own scripts and styles; request bodies are never
logged; form numbers are parsed strictly (ASCII digits, bounded), so no input reaches the database
unchecked. Store calls run in the thread pool, off the event loop.
"""

from __future__ import annotations

import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import ascii_uppercase
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from rewardlab.annotate.agreement import agreement_report
from rewardlab.annotate.auth import new_token, sign, unsign
from rewardlab.annotate.export import judgements, ranking_rows
from rewardlab.annotate.records import UserInfo
from rewardlab.annotate.store import MAX_OVERLAP, Store

HERE = Path(__file__).parent
COOKIE = "rl_session"
NOTE_MAX = 2000
MAX_ID = 2**63 - 1
"""Largest id the databases store (signed 64-bit); a larger one in a URL is simply not found."""
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def small_int(text: str, most: int) -> int | None:
    """`text` as an integer in [0, most] when it is plain ASCII digits, else None (never raises).

    `str.isdigit` is true for '²' and '٣', which `int` then refuses or reads; and a 5,000-digit
    number is too large for `int` and for the database."""
    if not text or len(text) > len(str(most)) or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= most else None


@dataclass
class LoginThrottle:
    """Failed sign-ins, counted per user name and per client address, in this process's memory.

    After `free` failures in a row for a name (`free_per_address` for an address), each further
    attempt must wait `base_s` · 2^(extra failures), at most `max_s`; while it waits, sign-in answers
    429 without checking the password. A success clears the name's count. At most `capacity` keys are
    remembered (the oldest are forgotten), so unknown names cannot grow memory without bound.
    """

    free: int = 5
    free_per_address: int = 20
    base_s: float = 1.0
    max_s: float = 300.0
    capacity: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)

    def _keys(self, name: str, address: str) -> list[tuple[str, int]]:
        return [("name:" + name, self.free), ("addr:" + address, self.free_per_address)]

    def wait_s(self, name: str, address: str) -> float:
        """Seconds until this name from this address may try again (0: now)."""
        now, wait = self.clock(), 0.0
        for key, free in self._keys(name, address):
            n, last = self._failures.get(key, (0, 0.0))
            if n >= free:
                wait = max(wait, last + min(self.max_s, self.base_s * 2 ** (n - free)) - now)
        return max(0.0, wait)

    def failed(self, name: str, address: str) -> None:
        for key, _ in self._keys(name, address):
            n, _last = self._failures.pop(key, (0, 0.0))
            self._failures[key] = (n + 1, self.clock())
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def succeeded(self, name: str) -> None:
        self._failures.pop("name:" + name, None)


@dataclass
class _Web:
    """What every route needs: the store, the templates, the session cookie and the page helpers."""

    store: Store
    env: Environment
    secret: bytes
    secure_cookies: bool
    throttle: LoginThrottle

    def set_session(self, response: Response, payload: dict) -> None:
        response.set_cookie(
            COOKIE,
            sign(payload, self.secret),
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies,
            max_age=7 * 24 * 3600,
        )

    def session_of(self, request: Request) -> dict:
        return unsign(request.cookies.get(COOKIE), self.secret) or {}

    async def page(
        self, request: Request, name: str, status: int = 200, user: UserInfo | None = None, **ctx: Any
    ) -> HTMLResponse:
        csrf = self.session_of(request).get("csrf")
        fresh = not isinstance(csrf, str)
        csrf = new_token() if fresh else csrf
        settings = await run_in_threadpool(self.store.settings)
        html = self.env.get_template(name).render(user=user, csrf=csrf, settings=settings, **ctx)
        response = HTMLResponse(html, status_code=status)
        if fresh:  # a first visit gets an anonymous session holding the CSRF token for the login form
            self.set_session(response, {"csrf": csrf})
        return response

    async def message(
        self, request: Request, status: int, user: UserInfo | None, heading: str, text: str
    ) -> HTMLResponse:
        return await self.page(request, "message.html", status, user, heading=heading, message=text)

    async def not_found(self, request: Request, user: UserInfo) -> HTMLResponse:
        return await self.message(request, 404, user, "Not found", "There is no such task among yours.")

    async def current_user(self, request: Request) -> UserInfo | None:
        sess = self.session_of(request)
        uid = sess.get("uid")
        if not isinstance(uid, int) or not 1 <= uid <= MAX_ID:
            return None
        user = await run_in_threadpool(self.store.user, uid)
        if user is None or not user.active or user.session_epoch != sess.get("epoch"):
            return None
        return user

    async def checked_form(self, request: Request) -> dict | None:
        """The posted form if its CSRF token matches the session's, else None."""
        form = await request.form()
        expected = self.session_of(request).get("csrf", "")
        given = form.get("csrf", "")
        if not isinstance(expected, str) or not expected or not isinstance(given, str):
            return None
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return None
        return {k: v for k, v in form.items() if isinstance(v, str)}

    async def refused(self, request: Request, user: UserInfo | None) -> HTMLResponse:
        msg = "This form has expired or did not come from this site. Reload the page and try again."
        return await self.message(request, 403, user, "Form refused", msg)


def to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def create_app(store: Store, secure_cookies: bool = False, throttle: LoginThrottle | None = None) -> FastAPI:
    """The app over `store`; `secure_cookies=True` when it is served behind HTTPS."""
    app = FastAPI(title="rewardlab annotate", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    web = _Web(store, env, store.secret_key(), secure_cookies, throttle or LoginThrottle())

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    app.include_router(_auth_routes(web))
    app.include_router(_task_routes(web))
    app.include_router(_ranking_routes(web))
    app.include_router(_admin_routes(web))
    return app


def _auth_routes(web: _Web) -> APIRouter:
    """/healthz, /, sign-in (throttled) and sign-out (revokes the user's cookies)."""
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @router.get("/")
    async def index(request: Request) -> Response:
        signed_in = await web.current_user(request)
        return RedirectResponse("/task/next" if signed_in else "/login", status_code=303)

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        return await web.page(request, "login.html")

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await web.checked_form(request)
        if form is None:
            return await web.refused(request, None)
        name, address = form.get("name", ""), request.client.host if request.client else ""
        wait = web.throttle.wait_s(name, address)
        if wait > 0:
            error = f"Too many failed sign-ins. Try again in {int(wait) + 1} s."
            response = await web.page(request, "login.html", 429, error=error, given_name=name)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        user = await run_in_threadpool(web.store.authenticate, name, form.get("password", ""))
        if user is None:
            web.throttle.failed(name, address)
            error = "Wrong name or password."
            return await web.page(request, "login.html", 401, error=error, given_name=name)
        web.throttle.succeeded(name)
        response = RedirectResponse("/admin" if user.is_admin else "/task/next", status_code=303)
        web.set_session(response, {"uid": user.id, "epoch": user.session_epoch, "csrf": new_token()})
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        user = await web.current_user(request)
        if await web.checked_form(request) is None:
            return await web.refused(request, user)
        if user is not None:  # server-side: every cookie signed for the old epoch stops working
            await run_in_threadpool(web.store.sign_out, user.id)
        response = to_login()
        response.delete_cookie(COOKIE)
        return response

    return router


FORM_INT_MAX = 999_999
"""Form numbers are read up to this; the store then says which range it takes ("a rank from 1 to 3")."""


def _rank_inputs(form: dict, k: int) -> tuple[list[int | None], int | None, str | None]:
    """(ranks in display order, confidence, note) from a submitted ranking form; bad numbers → None."""
    ranks = [small_int(form.get(f"rank_{d}", ""), FORM_INT_MAX) for d in range(k)]
    confidence = small_int(form.get("confidence", ""), FORM_INT_MAX)
    note = form.get("note", "").strip()[:NOTE_MAX] or None
    return ranks, confidence, note


async def _rank_page(
    web: _Web, request: Request, user: UserInfo, assignment_id: int, status: int = 200,
    error: str | None = None, ranks: list[int | None] | None = None, confidence: int | None = None,
    note: str | None = None,
) -> Response:  # fmt: skip
    """One task's ranking form: as last submitted, or (with `error`) as just posted, with the reason."""
    view = await run_in_threadpool(web.store.assignment, user.id, assignment_id)
    if view is None:
        return await web.not_found(request, user)
    progress = await run_in_threadpool(web.store.user_progress, user.id)
    k = len(view.responses)
    if error is None:
        ranks, confidence, note = view.ranks, view.confidence, view.note
    ranks = ranks or [None] * k
    # Show cards best first when ranked; unranked ones keep this annotator's shuffled order.
    order = sorted(range(k), key=lambda d: (ranks[d] is None, ranks[d] or 0, d))
    return await web.page(
        request, "rank.html", status, user, view=view, progress=progress, k=k, order=order,
        ranks=ranks, letters=ascii_uppercase, error=error, confidence=confidence, note=note or "",
    )  # fmt: skip


def _task_routes(web: _Web) -> APIRouter:
    """An annotator's pages: the next task, one task's ranking form, the task list."""
    router = APIRouter()

    @router.get("/task/next")
    async def next_task(request: Request) -> Response:
        user = await web.current_user(request)
        if user is None:
            return to_login()
        view = await run_in_threadpool(web.store.next_assignment, user.id)
        if view is None:
            progress = await run_in_threadpool(web.store.user_progress, user.id)
            return await web.page(request, "done.html", 200, user, progress=progress)
        return RedirectResponse(f"/task/{view.id}", status_code=303)

    @router.get("/task/{assignment_id}")
    async def task_page(request: Request, assignment_id: int) -> Response:
        user = await web.current_user(request)
        if user is None:
            return to_login()
        if not 1 <= assignment_id <= MAX_ID:
            return await web.not_found(request, user)
        return await _rank_page(web, request, user, assignment_id)

    @router.get("/tasks")
    async def my_tasks(request: Request) -> Response:
        user = await web.current_user(request)
        if user is None:
            return to_login()
        views = await run_in_threadpool(web.store.assignments, user.id)
        progress = await run_in_threadpool(web.store.user_progress, user.id)
        return await web.page(request, "tasks.html", 200, user, views=views, progress=progress)

    return router


def _ranking_routes(web: _Web) -> APIRouter:
    """The two forms of a task: submit a ranking, or skip it for now."""
    router = APIRouter()

    @router.post("/task/{assignment_id}/submit")
    async def submit(request: Request, assignment_id: int) -> Response:
        user = await web.current_user(request)
        if user is None:
            return to_login()
        form = await web.checked_form(request)
        if form is None:
            return await web.refused(request, user)
        view = None
        if 1 <= assignment_id <= MAX_ID:
            view = await run_in_threadpool(web.store.assignment, user.id, assignment_id)
        if view is None:
            return await web.not_found(request, user)
        ranks, confidence, note = _rank_inputs(form, len(view.responses))
        error = "Give every response a rank (1 = best)." if any(r is None for r in ranks) else None
        if error is None:
            try:
                await run_in_threadpool(web.store.submit, user.id, assignment_id, ranks, confidence, note)
            except ValueError as e:
                error = str(e)
        if error is not None:
            return await _rank_page(web, request, user, assignment_id, 400, error, ranks, confidence, note)
        return RedirectResponse("/task/next", status_code=303)  # POST-redirect-GET: refresh re-posts nothing

    @router.post("/task/{assignment_id}/skip")
    async def skip(request: Request, assignment_id: int) -> Response:
        user = await web.current_user(request)
        if user is None:
            return to_login()
        if await web.checked_form(request) is None:
            return await web.refused(request, user)
        in_range = 1 <= assignment_id <= MAX_ID
        if not (in_range and await run_in_threadpool(web.store.skip, user.id, assignment_id)):
            return await web.not_found(request, user)
        return RedirectResponse("/task/next", status_code=303)

    return router


def _admin_routes(web: _Web) -> APIRouter:
    """The admin page (progress, agreement), its settings form, and the rankings download."""
    router = APIRouter()

    async def admin_user(request: Request) -> tuple[UserInfo | None, Response | None]:
        user = await web.current_user(request)
        if user is None:
            return None, to_login()
        if not user.is_admin:
            text = "This page is for the project's admins."
            return None, await web.message(request, 403, user, "Admins only", text)
        return user, None

    async def admin_page(request: Request, user: UserInfo, status: int = 200, error: str = "") -> Response:
        progress = await run_in_threadpool(web.store.progress)
        labels = await run_in_threadpool(web.store.labels)
        report = agreement_report(judgements(labels))
        ctx = {"progress": progress, "report": report, "error": error, "max_overlap": MAX_OVERLAP}
        return await web.page(request, "admin.html", status, user, **ctx)

    @router.get("/admin")
    async def admin(request: Request) -> Response:
        user, denied = await admin_user(request)
        return denied or await admin_page(request, user)

    @router.post("/admin/settings")
    async def admin_settings(request: Request) -> Response:
        user, denied = await admin_user(request)
        if denied:
            return denied
        form = await web.checked_form(request)
        if form is None:
            return await web.refused(request, user)
        changes: dict[str, Any] = {"allow_ties": form.get("allow_ties") == "on"}
        if form.get("overlap", ""):
            overlap = small_int(form["overlap"], MAX_OVERLAP)
            if overlap is None or overlap < 1:
                error = f"Overlap must be a whole number from 1 to {MAX_OVERLAP}; nothing was changed."
                return await admin_page(request, user, 400, error)
            changes["overlap"] = overlap
        await run_in_threadpool(lambda: web.store.update_settings(**changes))
        return RedirectResponse("/admin", status_code=303)

    @router.get("/admin/export.jsonl")
    async def admin_export(request: Request, aggregate: str | None = None) -> Response:
        _, denied = await admin_user(request)
        if denied:
            return denied
        labels = await run_in_threadpool(web.store.labels)
        try:
            rows = ranking_rows(labels, aggregate or None)
        except ValueError as e:
            return Response(str(e), status_code=400, media_type="text/plain")
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        return Response(
            body,
            media_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="rankings.jsonl"'},
        )

    return router
