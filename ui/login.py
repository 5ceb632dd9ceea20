"""Who is using the UI: a login against the users file, or open access when the site
explicitly configured it for a local demo. No configuration means no access."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from catalog import audit
from cmrsearch.accounts import AccountError, authenticate
from cmrsearch.serve import check_access
from ui.resources import Resources

OPEN_USER = "local-demo"
# Password guessing: after this many failures in the window an account waits it out.
MAX_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)


def current_user(res: Resources) -> str:
    """The signed-in user's name; renders the login form and stops the script otherwise."""
    if res.settings.open_access:
        return OPEN_USER
    if user := st.session_state.get("user"):
        return str(user)
    check_access(res.settings)  # no users file: the page says how to create one
    users_file = res.settings.resolved_users_file
    st.title("cmr-search")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        with res.sessions() as session:
            failures = audit.failed_logins(session, name.strip(), LOCKOUT_WINDOW)
        if failures >= MAX_FAILURES:
            audit.record(res.sessions, name.strip() or "?", "login_locked")
            st.error(
                f"Too many failed sign-ins for this account: wait "
                f"{LOCKOUT_WINDOW.seconds // 60} minutes or ask an administrator."
            )
            st.stop()
        try:
            ok = authenticate(users_file, name.strip(), password)
        except AccountError as exc:
            st.error(str(exc))
            st.stop()
        audit.record(res.sessions, name.strip() or "?", "login" if ok else "login_failed")
        if ok:
            st.session_state["user"] = name.strip()
            st.rerun()
        st.error("Wrong user name or password.")
    st.stop()


def sign_out() -> None:
    st.session_state.pop("user", None)
