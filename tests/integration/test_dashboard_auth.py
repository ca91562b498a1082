"""/dashboard on a real gateway, without a browser: what it serves, and who may see it.

With auth on, the page, its files and the reports it reads take the master key as a bearer
token or as HTTP Basic's password (what a browser can send); Basic is never taken on anything
that changes state, nor on the rest of the admin API.
"""

from __future__ import annotations

import base64
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest

from gateway.api.dashboard import STATIC_DIR
from tests.conftest import GatewayFactory
from tests.governance_support import MASTER, MASTER_HEADERS, AdminClient, gov_config
from tests.support import ServerThread

ROOT = Path(__file__).parents[2]
PAGE_FILES = [
    "/dashboard",
    "/dashboard/static/app.js",
    "/dashboard/static/charts.js",
    "/dashboard/static/format.js",
    "/dashboard/static/dashboard.css",
    "/dashboard/static/chart.umd.min.js",
]
REPORTS = [
    "/admin/usage?since=2026-11-01&until=2026-11-02",
    "/admin/gpu?since=2026-11-01&until=2026-11-02",
]


def basic(password: str, user: str = "admin") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


@pytest.fixture()
def gw(sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory) -> ServerThread:
    return gateway_factory(gov_config(sim.url, sqlite_url))


def test_without_a_key_the_page_and_its_data_are_refused_with_a_basic_challenge(
    gw: ServerThread,
) -> None:
    for path in PAGE_FILES + REPORTS:
        r = httpx.get(gw.url + path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith('Basic realm="gateway dashboard"'), path
        assert r.json()["error"]["type"] == "authentication_error"
        assert MASTER not in r.text


def test_the_master_key_opens_the_page_as_basic_or_bearer(gw: ServerThread) -> None:
    for headers in (basic(MASTER), basic(MASTER, user=""), MASTER_HEADERS):
        for path in PAGE_FILES:
            r = httpx.get(gw.url + path, headers=headers)
            assert r.status_code == 200, (path, headers)
        for path in REPORTS:
            r = httpx.get(gw.url + path, headers=headers)
            assert r.status_code == 200, (path, r.text)
    page = httpx.get(gw.url + "/dashboard", headers=basic(MASTER))
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "http" not in csp  # no other origin may serve a script or answer a fetch


def test_basic_is_refused_where_it_could_be_replayed_by_a_cross_site_form(
    gw: ServerThread,
) -> None:
    # a browser attaches cached Basic credentials to any request to the origin, cross-site
    # form posts included: so it opens reads of the dashboard's data, never a change
    creds = basic(MASTER)
    assert httpx.post(f"{gw.url}/admin/teams", json={"name": "x"}, headers=creds).status_code == 401
    assert httpx.get(f"{gw.url}/admin/keys", headers=creds).status_code == 401
    assert httpx.get(f"{gw.url}/admin/teams", headers=creds).status_code == 401
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=chat, headers=creds).status_code == 401
    assert httpx.get(f"{gw.url}/v1/models", headers=creds).status_code == 401
    # and no challenge outside the dashboard's reads: API clients never see a login prompt
    assert "www-authenticate" not in httpx.get(f"{gw.url}/v1/models").headers


def test_a_wrong_password_or_a_virtual_key_does_not_open_it(gw: ServerThread) -> None:
    admin = AdminClient(gw.url)
    admin.team("t")
    virtual = admin.key("t")["key"]
    bad_bearer = httpx.get(f"{gw.url}/v1/models", headers={"authorization": "Bearer sk-nope"})
    for headers in (
        basic("sk-master-wrong"),
        basic(MASTER[:-1]),
        {"authorization": "Basic not-base64!"},
        {"authorization": f"Basic {MASTER}"},  # the key itself, not user:password encoded
    ):
        r = httpx.get(f"{gw.url}/dashboard", headers=headers)
        assert (r.status_code, r.content) == (401, bad_bearer.content), headers
    for headers in (basic(virtual), {"authorization": f"Bearer {virtual}"}):
        r = httpx.get(f"{gw.url}/dashboard", headers=headers)
        assert r.status_code == 403 and "master key" in r.json()["error"]["message"]


def test_with_auth_off_the_page_is_served_to_anyone(gateway: ServerThread) -> None:
    for path in PAGE_FILES:
        assert httpx.get(gateway.url + path).status_code == 200, path
    js = httpx.get(f"{gateway.url}/dashboard/static/chart.umd.min.js")
    assert js.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
    assert js.text.startswith("/*!\n * Chart.js v4.")
    assert httpx.get(f"{gateway.url}/dashboard/static/nope.js").status_code == 404
    # a trailing slash would break the page's relative URLs: it is sent to /dashboard
    r = httpx.get(f"{gateway.url}/dashboard/", follow_redirects=False)
    assert r.status_code in (307, 308) and r.headers["location"].endswith("/dashboard")


def test_the_page_loads_nothing_from_another_origin() -> None:
    for f in STATIC_DIR.iterdir():
        if f.suffix in (".html", ".js", ".css") and f.name != "chart.umd.min.js":
            text = f.read_text()
            assert "http://" not in text and "https://" not in text and "//cdn" not in text, f


def test_the_wheel_carries_every_static_file_and_the_chart_licence() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["gateway"]
    files = [p.relative_to(ROOT / "gateway").as_posix() for p in STATIC_DIR.iterdir()]
    assert "dashboard/static/chart.js.LICENSE.md" in files
    missing = [f for f in files if not any(fnmatch(f, pat) for pat in patterns)]
    assert not missing, f"not in the wheel (pyproject package-data): {missing}"
