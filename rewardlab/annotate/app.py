"""The annotation web app: sign in, rank one task at a time, skip and come back; an admin page.

`create_app(store)` builds a FastAPI app of server-rendered pages (Jinja2 templates with
autoescaping, so response text is shown as text, never run as HTML) and one local script for drag
and keyboard ranking; no asset comes from a CDN. `rewardlab annotate serve` runs it with uvicorn on
127.0.0.1.

Safety: sessions are HMAC-signed cookies (HttpOnly, SameSite=Lax); every form carries the session's
CSRF token and a POST without it is refused; an annotator only reaches their own assignments (any
other id is a 404) and admin pages answer 403 to non-admins; a Content-Security-Policy allows only
the app's own scripts and styles; request bodies are never logged. Store calls run in the thread
pool, off the event loop.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from string import ascii_uppercase
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from rewardlab.annotate.agreement import agreement_report
from rewardlab.annotate.auth import new_token, sign, unsign
from rewardlab.annotate.export import judgements, ranking_rows
from rewardlab.annotate.records import UserInfo
from rewardlab.annotate.store import Store

HERE = Path(__file__).parent
COOKIE = "rl_session"
NOTE_MAX = 2000
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_app(store: Store, secure_cookies: bool = False) -> FastAPI:
    """The app over `store`; `secure_cookies=True` when it is served behind HTTPS."""
    app = FastAPI(title="rewardlab annotate", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    secret = store.secret_key()

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    def set_session(response: Response, payload: dict) -> None:
        response.set_cookie(
            COOKIE,
            sign(payload, secret),
            httponly=True,
            samesite="lax",
            secure=secure_cookies,
            max_age=7 * 24 * 3600,
        )

    def session_of(request: Request) -> dict:
        return unsign(request.cookies.get(COOKIE), secret) or {}

    async def page(
        request: Request, name: str, status: int = 200, user: UserInfo | None = None, **ctx: Any
    ) -> HTMLResponse:
        csrf = session_of(request).get("csrf")
        fresh = csrf is None
        csrf = csrf or new_token()
        settings = await run_in_threadpool(store.settings)
        html = env.get_template(name).render(user=user, csrf=csrf, settings=settings, **ctx)
        response = HTMLResponse(html, status_code=status)
        if fresh:  # a first visit gets an anonymous session holding the CSRF token for the login form
            set_session(response, {"csrf": csrf})
        return response

    async def current_user(request: Request) -> UserInfo | None:
        sess = session_of(request)
        if "uid" not in sess:
            return None
        user = await run_in_threadpool(store.user, sess["uid"])
        if user is None or not user.active or user.session_epoch != sess.get("epoch"):
            return None
        return user

    async def checked_form(request: Request) -> dict | None:
        """The posted form if its CSRF token matches the session's, else None."""
        form = await request.form()
        expected = session_of(request).get("csrf", "")
        given = form.get("csrf", "")
        if not expected or not isinstance(given, str) or not hmac.compare_digest(given, expected):
            return None
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def to_login() -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    async def refused(request: Request, user: UserInfo | None) -> HTMLResponse:
        msg = "This form has expired or did not come from this site. Reload the page and try again."
        return await page(request, "message.html", 403, user, heading="Form refused", message=msg)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/")
    async def index(request: Request) -> Response:
        return RedirectResponse("/task/next" if await current_user(request) else "/login", status_code=303)

    @app.get("/login")
    async def login_page(request: Request) -> Response:
        return await page(request, "login.html")

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await checked_form(request)
        if form is None:
            return await refused(request, None)
        user = await run_in_threadpool(store.authenticate, form.get("name", ""), form.get("password", ""))
        if user is None:
            return await page(
                request, "login.html", 401, error="Wrong name or password.", given_name=form.get("name", "")
            )
        response = RedirectResponse("/admin" if user.is_admin else "/task/next", status_code=303)
        set_session(response, {"uid": user.id, "epoch": user.session_epoch, "csrf": new_token()})
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        if await checked_form(request) is None:
            return await refused(request, await current_user(request))
        response = to_login()
        response.delete_cookie(COOKIE)
        return response

    @app.get("/task/next")
    async def next_task(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return to_login()
        view = await run_in_threadpool(store.next_assignment, user.id)
        if view is None:
            progress = await run_in_threadpool(store.user_progress, user.id)
            return await page(request, "done.html", 200, user, progress=progress)
        return RedirectResponse(f"/task/{view.id}", status_code=303)

    async def rank_page(
        request: Request,
        user: UserInfo,
        assignment_id: int,
        status: int = 200,
        error: str | None = None,
        ranks: list[int | None] | None = None,
        confidence: int | None = None,
        note: str | None = None,
    ) -> Response:
        view = await run_in_threadpool(store.assignment, user.id, assignment_id)
        if view is None:
            return await page(
                request,
                "message.html",
                404,
                user,
                heading="Not found",
                message="There is no such task among yours.",
            )
        progress = await run_in_threadpool(store.user_progress, user.id)
        k = len(view.responses)
        if error is None:
            ranks, confidence, note = view.ranks, view.confidence, view.note
        ranks = ranks or [None] * k
        # Show cards best first when ranked; unranked ones keep this annotator's shuffled order.
        order = sorted(range(k), key=lambda d: (ranks[d] is None, ranks[d] or 0, d))
        return await page(
            request,
            "rank.html",
            status,
            user,
            view=view,
            progress=progress,
            k=k,
            order=order,
            ranks=ranks,
            letters=ascii_uppercase,
            error=error,
            confidence=confidence,
            note=note or "",
        )

    @app.get("/task/{assignment_id}")
    async def task_page(request: Request, assignment_id: int) -> Response:
        user = await current_user(request)
        return to_login() if user is None else await rank_page(request, user, assignment_id)

    @app.post("/task/{assignment_id}/submit")
    async def submit(request: Request, assignment_id: int) -> Response:
        user = await current_user(request)
        if user is None:
            return to_login()
        form = await checked_form(request)
        if form is None:
            return await refused(request, user)
        view = await run_in_threadpool(store.assignment, user.id, assignment_id)
        if view is None:
            return await rank_page(request, user, assignment_id)
        ranks = [
            int(v) if (v := form.get(f"rank_{d}", "")).isdigit() else None for d in range(len(view.responses))
        ]
        conf = form.get("confidence", "")
        confidence = int(conf) if conf.isdigit() else None
        note = form.get("note", "").strip()[:NOTE_MAX] or None
        if any(r is None for r in ranks):
            return await rank_page(
                request,
                user,
                assignment_id,
                400,
                "Give every response a rank (1 = best).",
                ranks,
                confidence,
                note,
            )
        try:
            await run_in_threadpool(store.submit, user.id, assignment_id, ranks, confidence, note)
        except ValueError as e:
            return await rank_page(request, user, assignment_id, 400, str(e), ranks, confidence, note)
        return RedirectResponse(
            "/task/next", status_code=303
        )  # POST-redirect-GET: a refresh re-posts nothing

    @app.post("/task/{assignment_id}/skip")
    async def skip(request: Request, assignment_id: int) -> Response:
        user = await current_user(request)
        if user is None:
            return to_login()
        if await checked_form(request) is None:
            return await refused(request, user)
        await run_in_threadpool(store.skip, user.id, assignment_id)
        return RedirectResponse("/task/next", status_code=303)

    @app.get("/tasks")
    async def my_tasks(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return to_login()
        views = await run_in_threadpool(store.assignments, user.id)
        progress = await run_in_threadpool(store.user_progress, user.id)
        return await page(request, "tasks.html", 200, user, views=views, progress=progress)

    async def admin_user(request: Request) -> tuple[UserInfo | None, Response | None]:
        user = await current_user(request)
        if user is None:
            return None, to_login()
        if not user.is_admin:
            return None, await page(
                request,
                "message.html",
                403,
                user,
                heading="Admins only",
                message="This page is for the project's admins.",
            )
        return user, None

    @app.get("/admin")
    async def admin(request: Request) -> Response:
        user, denied = await admin_user(request)
        if denied:
            return denied
        progress = await run_in_threadpool(store.progress)
        labels = await run_in_threadpool(store.labels)
        report = agreement_report(judgements(labels))
        return await page(request, "admin.html", 200, user, progress=progress, report=report)

    @app.post("/admin/settings")
    async def admin_settings(request: Request) -> Response:
        user, denied = await admin_user(request)
        if denied:
            return denied
        form = await checked_form(request)
        if form is None:
            return await refused(request, user)
        overlap = form.get("overlap", "")
        changes: dict[str, Any] = {"allow_ties": form.get("allow_ties") == "on"}
        if overlap.isdigit() and int(overlap) >= 1:
            changes["overlap"] = int(overlap)
        await run_in_threadpool(lambda: store.update_settings(**changes))
        return RedirectResponse("/admin", status_code=303)

    @app.get("/admin/export.jsonl")
    async def admin_export(request: Request, aggregate: str | None = None) -> Response:
        _, denied = await admin_user(request)
        if denied:
            return denied
        labels = await run_in_threadpool(store.labels)
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

    return app
