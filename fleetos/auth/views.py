"""Sign-in by magic link: ask for a link, confirm it, use it once."""

from __future__ import annotations

import uuid

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
from werkzeug.wrappers import Response as BaseResponse

from ..actions import access
from ..contacts import mailbox
from ..domain_errors import Invalid, TooMany
from ..errors import refusal_headers
from ..extensions import limiter
from ..forms import EMAIL_MAX
from ..messaging.links import Link, LinkError, safe_next
from .forms import CodeForm, InviteForm, SignInForm, SignUpForm
from .session import current_session_id, end_session, login_required, start_session

bp = Blueprint("auth", __name__, url_prefix="/auth")

Page = str | tuple[str, int] | tuple[str, int, dict[str, str]] | BaseResponse

LINK_ERROR_STATUS = {"invalid": 400, "expired": 410, "used": 410, "revoked": 410}


def _address_key() -> str:
    """Rate-limit key for the mailbox a link would go to (typed, or inside the token):
    canonical, plus-tags folded, so ``a+1@x`` and ``a+2@x`` share one budget."""
    token = (request.view_args or {}).get("token")
    if token is not None:
        return "address:" + mailbox(access.link_address(token) or "")
    return "address:" + mailbox(request.form.get("address", request.form.get("email", "")))


def _per_ip() -> str:
    return str(current_app.config["LINK_REQUEST_LIMIT_PER_IP"])


def _per_address() -> str:
    return str(current_app.config["LINK_REQUEST_LIMIT_PER_ADDRESS"])


# One budget per client and one per address, shared by every form that mails a link.
link_requests_per_ip = limiter.shared_limit(_per_ip, scope="link-requests", methods=["POST"])
link_requests_per_address = limiter.shared_limit(
    _per_address, scope="link-address", key_func=_address_key, methods=["POST"]
)
# Codes typed: a budget of their own (a code has a million values; with these and the
# 5-tries rule, guessing one is hopeless).
code_tries_per_ip = limiter.limit(
    lambda: str(current_app.config["CODE_TRY_LIMIT_PER_IP"]), methods=["POST"]
)
code_tries_per_address = limiter.limit(
    lambda: str(current_app.config["CODE_TRY_LIMIT_PER_ADDRESS"]),
    key_func=_address_key,
    methods=["POST"],
)


@bp.after_request
def private_link_pages(response: Response) -> Response:
    # A link page's URL holds the token: keep it out of Referer headers and caches.
    if request.endpoint in {"auth.link", "auth.use_link", "auth.fresh_link"}:
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(LinkError)
def link_error(error: LinkError) -> tuple[str, int]:
    """A link that cannot be used: say why, and offer a fresh one where we know the address."""
    token = (request.view_args or {}).get("token", "")
    page = render_template(
        "auth/link_error.html", reason=error.reason, link=error.link, token=token
    )
    return page, LINK_ERROR_STATUS[error.reason]


@bp.route("/login", methods=["GET", "POST"])
@link_requests_per_ip
@link_requests_per_address
def login() -> Page:
    """Ask for a sign-in link by e-mail."""
    form = SignInForm(formdata=request.form if request.method == "POST" else None)
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET" or not form.validate():
        return render_template("auth/login.html", form=form, next=next_path), (
            422 if form.errors else 200
        )
    sent = access.ask_for_sign_in(form.address.data or "", next_path)
    return _check_your_messages(sent.address)


def _check_your_messages(address: str) -> str:
    """The page after a message was asked for: where it went, and the form for its code."""
    code_form = CodeForm(formdata=None, data={"address": address})
    return render_template("auth/check_email.html", email=address, code_form=code_form)


@bp.route("/code", methods=["GET", "POST"])
@code_tries_per_ip
@code_tries_per_address
def code() -> Page:
    """Sign in with the code a message carried, on whatever device types it."""
    form = CodeForm(formdata=request.form if request.method == "POST" else None)
    if request.method == "GET":
        form.address.data = request.args.get("address", "")[:EMAIL_MAX]
        return render_template("auth/code.html", code_form=form)
    message = None
    if form.validate():
        try:
            result = access.sign_in_with_code(
                form.address.data or "",
                form.code.data or "",
                client_ip=request.remote_addr,
                user_agent=request.user_agent.string,
                replacing=current_session_id(),
            )
        except Invalid as refusal:
            form.refused(refusal)
        except LinkError:  # an invitation withdrawn since: as dead as a wrong code
            message = WRONG_CODE
        else:
            if result is not None:
                start_session(result)
                if result.created:
                    flash(f"Welcome to FleetOS, {result.contact.label}.", "success")
                return redirect(result.next_path, code=303)
            message = WRONG_CODE
    return render_template("auth/code.html", code_form=form, message=message), 422


# The same words whatever was wrong: a wrong code, a used or expired one, one that
# died of 5 wrong tries, or an address no message went to (never told apart).
WRONG_CODE = (
    "That code does not work: it is wrong, used, or expired, or it was typed wrong "
    "5 times. Check the address and the code, or ask for a new message."
)


@bp.route("/signup", methods=["GET", "POST"])
@link_requests_per_ip
@link_requests_per_address
def signup() -> Page:
    """Start a company: its first contact confirms by the e-mailed link."""
    form = SignUpForm(formdata=request.form if request.method == "POST" else None)
    if request.method == "GET" or not form.validate():
        return render_template("auth/signup.html", form=form), (422 if form.errors else 200)
    try:
        sent = access.ask_for_sign_up(
            access.SignUp(
                company_name=form.company_name.data or "",
                company_type=form.company_type.data or "",
                address=form.address.data or "",
                display_name=form.display_name.data or "",
            )
        )
    except Invalid as refusal:  # a verified company's name: the form again, as typed
        form.refused(refusal)
        return render_template("auth/signup.html", form=form), 422
    return _check_your_messages(sent.address)


@bp.route("/link/<token>", methods=["GET"])
def link(token: str) -> Page:
    """Show who the link signs in, with one button; creates and consumes nothing.

    Mail scanners fetch links before people do: a GET (or HEAD) must neither
    burn the link nor sign anyone in.
    """
    try:
        preview = access.preview_link(token)
    except LinkError as exc:
        if exc.link is not None and _signed_in_as(exc.link):
            return redirect(exc.link.next_path, code=303)
        raise
    if _signed_in_as(preview.link):
        # Already signed in as this address (a second notification, say): just go there.
        return redirect(preview.link.next_path, code=303)
    return render_template("auth/confirm_link.html", preview=preview, token=token)


def _signed_in_as(link: Link) -> bool:
    contact = g.get("contact")
    return contact is not None and contact.contact_value == link.contact_value


@bp.route("/link/<token>", methods=["POST"])
def use_link(token: str) -> Page:
    """Use the link: sign in (the contact emerges on first use) and go on."""
    result = access.sign_in_with_link(
        token,
        client_ip=request.remote_addr,
        user_agent=request.user_agent.string,
        replacing=current_session_id(),
    )
    start_session(result)
    if result.created:
        flash(f"Welcome to FleetOS, {result.contact.label}.", "success")
    # 303: the browser follows with a GET, and the new URL holds no token.
    return redirect(result.next_path, code=303)


@bp.route("/link/<token>/fresh", methods=["POST"])
@link_requests_per_ip
@link_requests_per_address
def fresh_link(token: str) -> Page:
    """Mail a new link to the address an expired or used link was for."""
    sent = access.send_fresh_link(token)
    return _check_your_messages(sent.address)


@bp.route("/logout", methods=["POST"])
def logout() -> Page:
    """Sign out: this session ends, for every copy of its cookie."""
    if g.get("contact") is not None:
        access.sign_out(g.contact, current_session_id())
    end_session()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/logout/everywhere", methods=["POST"])
@login_required
def logout_everywhere() -> Page:
    """Sign out on all devices: every session of this contact ends, this one too."""
    ended = access.sign_out_everywhere(g.contact)
    end_session()
    devices = "1 device" if ended == 1 else f"{ended} devices"
    flash(f"You are signed out on all devices ({devices}).", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.post("/invitations/<uuid:invitation_id>/revoke")
@login_required
def revoke_invitation(invitation_id: uuid.UUID) -> Page:
    """Withdraw an invitation of this company: its link (and any fresh one) stops working."""
    revoked = access.revoke_invitation(g.contact, invitation_id)
    flash(f"The invitation to {revoked.address} is withdrawn.", "success")
    return redirect(url_for("dashboard.company", _anchor="invitations"), code=303)


@bp.route("/invite", methods=["GET", "POST"])
@login_required
@link_requests_per_ip
@link_requests_per_address
def invite() -> Page:
    """Invite a colleague to this company by e-mail."""
    form = InviteForm(formdata=request.form if request.method == "POST" else None)
    if request.method == "GET":
        return render_template("auth/invite.html", form=form)
    if form.validate():
        try:
            sent = access.invite_colleague(
                g.contact, form.address.data or "", form.display_name.data or ""
            )
        except TooMany as refusal:  # nothing was sent; the form keeps what was typed
            page = render_template("auth/invite.html", form=form, message=refusal.message)
            return page, 429, refusal_headers(refusal)
        except Invalid as refusal:
            form.refused(refusal)
        else:
            flash(f"Invitation sent to {sent.address}.", "success")
            back = safe_next(form.back.data, default=url_for("auth.invite"))
            return redirect(back, code=303)
    return render_template("auth/invite.html", form=form), 422
