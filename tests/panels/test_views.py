"""Our blueprint's pages: the heap summary, the sizes (with the config's secrets masked)
and the class tracker."""

from __future__ import annotations

import re
import typing as t

from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import SECRET

if t.TYPE_CHECKING:
    pass


def test_secret_config_values_are_masked() -> None:
    client = make_toolbar_app(
        DB_PASSWORD="hunter2", DB_URL="postgres://app:pw42@db/app"
    ).test_client()
    sizes = client.get("/_observe/memory/sizes").get_data(as_text=True)
    assert "SECRET_KEY" in sizes and "DB_PASSWORD" in sizes and "DB_URL" in sizes
    for secret in (SECRET, "hunter2", "pw42"):
        assert secret not in sizes
    assert "postgres://[Filtered]@db/app" in sizes


def test_tier3_heap_summary_page() -> None:
    client = make_toolbar_app().test_client()
    response = client.get("/_observe/memory/heap")
    html = response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert re.search(r"<td>dict</td><td[^>]*>\d+</td>", html)
    assert "flDebug" not in html  # the toolbar left our page alone


def test_tier3_sizes_page() -> None:
    html = make_toolbar_app().test_client().get("/_observe/memory/sizes").get_data(as_text=True)
    for name in (
        "app.config",
        "app.extensions",
        "g (this request)",
        "app.extensions[&#39;observe&#39;]",
    ):
        assert name in html
    assert re.search(r"app\.config</code></td><td[^>]*>\d+\.\d KiB", html)


def test_tier3_class_tracker() -> None:
    client = make_toolbar_app().test_client()
    page = client.get("/_observe/memory/classes").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token
    names = "tests.support.toolbar.Widget no.such.Class os.path"
    html = client.post(
        "/_observe/memory/classes", data={"token": token.group(1), "names": names}
    ).get_data(as_text=True)
    assert "Tracking new instances of tests.support.toolbar.Widget" in html
    assert "No class no.such.Class" in html and "No class os.path" in html
    client.get("/widgets").close()
    html = client.get("/_observe/memory/classes").get_data(as_text=True)
    assert re.search(r"Widget</code></td><td[^>]*>3</td><td[^>]*>3</td>", html)
    stop = {"token": token.group(1), "action": "stop"}
    html = client.post("/_observe/memory/classes", data=stop).get_data(as_text=True)
    assert "No class tracked" in html
    forged = {"token": "forged", "names": "tests.support.toolbar.Widget"}
    assert client.post("/_observe/memory/classes", data=forged).status_code == 400
