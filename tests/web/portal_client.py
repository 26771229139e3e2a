"""A small HTTP client for the portal over a real socket, and a person to sign in with.

``PortalClient`` keeps its own cookies (one client = one browser), never follows
redirects (tests look at ``Location``), and closes every response.
"""

from __future__ import annotations

import http.cookiejar
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message

from groupware.core.directory import Directory, Person
from groupware.core.hr_import import HrImport
from tests.support.servers import next_numen

HR_HEADER = "numen;nom;prenom;date_naissance;fonction;etablissement;discipline"
# Every form of a session carries the same token (WTForms and hand-written inputs).
_CSRF = re.compile(r'name="(?:lang-)?csrf_token"[^>]*value="([^"]+)"')


@dataclass(frozen=True)
class Imported:
    """A person created by the HR import, with the NUMEN they first sign in with."""

    person: Person
    numen: str

    @property
    def login(self) -> str:
        return self.person.login


def import_person(
    directory: Directory,
    first_name: str = "Émilie",
    last_name: str = "Durand",
    *,
    birth_date: str = "17/05/1980",
    school: str = "Lycée Joffre",
) -> Imported:
    """Import one person from an HR file, as an administrator's import would."""
    numen = next_numen()
    line = f"{numen};{last_name};{first_name};{birth_date};Enseignant;{school};Lettres"
    report = HrImport(directory).run(f"{HR_HEADER}\n{line}\n".encode(), actor="test")
    assert not report.rejected, report.rejected
    (login,) = report.created
    return Imported(person=directory.get(login), numen=numen)


@dataclass(frozen=True)
class Reply:
    """One HTTP response, read and closed."""

    status: int
    headers: Message
    body: str

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    def set_cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []

    def csrf_token(self) -> str:
        found = _CSRF.search(self.body)
        assert found, "no CSRF token in the page"
        return found.group(1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class PortalClient:
    """One browser's worth of cookies against ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        language: str = "fr",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url
        self.language = language
        self.cookies = http.cookiejar.CookieJar()
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.HTTPCookieProcessor(self.cookies),
            _NoRedirect(),
        ]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self._opener = urllib.request.build_opener(*handlers)

    def request(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Accept-Language": self.language, **(headers or {})},
        )
        try:
            response = self._opener.open(request, timeout=5)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            return Reply(response.status, response.headers, response.read().decode())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def download(self, path: str) -> tuple[int, Message, bytes]:
        """GET a binary body: ``(status, headers, bytes)``."""
        request = urllib.request.Request(
            self.base_url + path, headers={"Accept-Language": self.language}
        )
        try:
            response = self._opener.open(request, timeout=5)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            return response.status, response.headers, response.read()

    def post(self, path: str, form: Mapping[str, str]) -> Reply:
        return self.request("POST", path, form)

    def submit(self, path: str, fields: Mapping[str, str], *, page: str | None = None) -> Reply:
        """GET ``page`` (default ``path``) for its CSRF token, then POST ``fields`` to ``path``."""
        page = page or path
        token = self.get(page).csrf_token()
        # Browsers send the page as Referer (Referrer-Policy: same-origin); over HTTPS
        # Flask-WTF requires it to be this site.
        return self.request(
            "POST", path, {"csrf_token": token, **fields}, {"Referer": self.base_url + page}
        )

    def sign_in(self, identifier: str, password: str, next_path: str = "") -> Reply:
        """Fill in the sign-in form."""
        return self.submit(
            "/login", {"identifier": identifier, "password": password, "next": next_path}
        )

    def change_password(self, current: str, new: str, confirm: str | None = None) -> Reply:
        """Fill in the password change form."""
        confirm = new if confirm is None else confirm
        return self.submit("/password", {"current": current, "new": new, "confirm": confirm})

    def sign_out(self) -> Reply:
        """Press the sign-out button (any signed-in page has it; /password always answers)."""
        return self.submit("/logout", {}, page="/password")

    def is_signed_in(self) -> bool:
        """Whether ``/`` answers with the home page rather than a redirect."""
        return self.get("/").status == 200
