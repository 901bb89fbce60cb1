"""Sign-in by magic link: ask for a link, confirm it, use it once."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from ..extensions import limiter
from . import service
from .session import end_session, login_required, start_session
from .tokens import LinkError, safe_next

bp = Blueprint("auth", __name__, url_prefix="/auth")

LINK_ERROR_STATUS = {"invalid": 400, "expired": 410, "used": 410}


def _address_key() -> str:
    """Rate-limit key for the address a link would go to (typed, or inside the token)."""
    typed = request.form.get("email", "")
    return "address:" + " ".join(typed.split()).lower()


def _per_ip() -> str:
    return current_app.config["LINK_REQUEST_LIMIT_PER_IP"]


def _per_address() -> str:
    return current_app.config["LINK_REQUEST_LIMIT_PER_ADDRESS"]


# One budget per client and one per address, shared by every form that mails a link.
link_requests_per_ip = limiter.shared_limit(_per_ip, scope="link-requests", methods=["POST"])
link_requests_per_address = limiter.shared_limit(
    _per_address, scope="link-address", key_func=_address_key, methods=["POST"]
)


@bp.after_request
def private_link_pages(response: Response) -> Response:
    # A link page's URL holds the token: keep it out of Referer headers and caches.
    if request.endpoint in {"auth.link", "auth.use_link", "auth.fresh_link"}:
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/login", methods=["GET", "POST"])
@link_requests_per_ip
@link_requests_per_address
def login():
    """Ask for a sign-in link by e-mail."""
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/login.html", email="", next=next_path, errors={})
    email = request.form.get("email", "")
    try:
        service.request_sign_in(email, next_path)
    except service.AuthError as exc:
        errors = {exc.field: str(exc)}
        return render_template("auth/login.html", email=email, next=next_path, errors=errors), 422
    return render_template("auth/check_email.html", email=email.strip())


@bp.route("/signup", methods=["GET", "POST"])
@link_requests_per_ip
@link_requests_per_address
def signup():
    """Start a company: its first contact confirms by the e-mailed link."""
    form = service.SignUp(
        company_name=request.form.get("company_name", ""),
        company_type=request.form.get("company_type", ""),
        email=request.form.get("email", ""),
        display_name=request.form.get("display_name", ""),
    )
    if request.method == "GET":
        return render_template("auth/signup.html", form=form, errors={})
    cleaned, errors = form.validated()
    if errors:
        return render_template("auth/signup.html", form=form, errors=errors), 422
    service.request_sign_up(cleaned)
    return render_template("auth/check_email.html", email=cleaned.email)


@bp.route("/link/<token>", methods=["GET"])
def link(token: str):
    """Show who the link signs in, with one button; creates and consumes nothing.

    Mail scanners fetch links before people do: a GET (or HEAD) must neither
    burn the link nor sign anyone in.
    """
    try:
        preview = service.preview_link(token)
    except LinkError as exc:
        if _signed_in_as(exc.link):
            return redirect(exc.link.next_path, code=303)
        return _link_error(exc, token)
    if _signed_in_as(preview.link):
        # Already signed in as this address (a second notification, say): just go there.
        return redirect(preview.link.next_path, code=303)
    return render_template("auth/confirm_link.html", preview=preview, token=token)


def _signed_in_as(link) -> bool:
    contact = g.get("contact")
    return link is not None and contact is not None and contact.contact_value == link.contact_value


@bp.route("/link/<token>", methods=["POST"])
def use_link(token: str):
    """Use the link: sign in (the contact emerges on first use) and go on."""
    try:
        result = service.sign_in_with_link(token, client_ip=request.remote_addr)
    except LinkError as exc:
        return _link_error(exc, token)
    start_session(result.contact)
    if result.created:
        flash(f"Welcome to FleetOS, {result.contact.label}.", "success")
    # 303: the browser follows with a GET, and the new URL holds no token.
    return redirect(result.next_path, code=303)


@bp.route("/link/<token>/fresh", methods=["POST"])
@link_requests_per_ip
def fresh_link(token: str):
    """Mail a new link to the address an expired or used link was for."""
    try:
        address = service.send_fresh_link(token)
    except LinkError as exc:
        return _link_error(exc, token)
    return render_template("auth/check_email.html", email=address)


def _link_error(exc: LinkError, token: str):
    return (
        render_template("auth/link_error.html", reason=exc.reason, link=exc.link, token=token),
        LINK_ERROR_STATUS[exc.reason],
    )


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out."""
    if g.get("contact") is not None:
        service.record_sign_out(g.contact)
    end_session()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/invite", methods=["GET", "POST"])
@login_required
@link_requests_per_ip
@link_requests_per_address
def invite():
    """Invite a colleague to this company by e-mail."""
    email = request.form.get("email", "")
    display_name = request.form.get("display_name", "")
    if request.method == "GET":
        return render_template("auth/invite.html", email="", display_name="", errors={})
    try:
        address = service.invite_colleague(g.contact, email, display_name)
    except service.AuthError as exc:
        errors = {exc.field: str(exc)}
        return (
            render_template(
                "auth/invite.html", email=email, display_name=display_name, errors=errors
            ),
            422,
        )
    flash(f"Invitation sent to {address}.", "success")
    back = safe_next(request.form.get("back"), default=url_for("auth.invite"))
    return redirect(back, code=303)
