"""`/dashboard`: the admin-key gate, the summary data, and the page in a real browser."""

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import three_tier_config
from tiergate.fakes import Fault, Reply

ADMIN = "admin-key-for-tests-0123456789"
ADMIN_HEADERS = {"authorization": f"Bearer {ADMIN}"}
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def dash(fake, start_gateway):
    return start_gateway(
        three_tier_config(fake, f"observability: {{admin_key: {ADMIN}, bucket: 2}}\n")
    )


def traffic(live, fake):
    """Budget, standard and premium answers, one failover, one client error, feedback."""
    client = live.client()
    fake.enqueue(Reply("hi!", input_tokens=10, output_tokens=5))
    fake.enqueue(Reply("ok", input_tokens=10, output_tokens=5))
    fake.enqueue(
        Fault(status=503),
        Fault(status=503),
        Reply("after failover", input_tokens=20, output_tokens=30),
    )
    ids = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi there"}]
        )
        ids.append(raw.headers["x-tiergate-request-id"])
    fake.enqueue(Reply("a long careful answer", input_tokens=400, output_tokens=900))
    client.chat.completions.create(
        model="tier:premium",
        messages=[{"role": "user", "content": "design a distributed database"}],
    )
    with pytest.raises(Exception):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    for request_id in ids:
        r = httpx.post(
            f"{live.url}/v1/feedback",
            headers={"authorization": "Bearer tg-test-key"},
            json={"request_id": request_id, "thumbs": "up"},
        )
        assert r.status_code == 200, r.text


def test_summary_needs_the_admin_key(dash):
    url = f"{dash.url}/dashboard/api/summary"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": "Bearer wrong"}).status_code == 401
    # the virtual key is not the admin key, and the key is never taken from the URL
    assert httpx.get(url, headers={"authorization": "Bearer tg-test-key"}).status_code == 401
    assert httpx.get(url, params={"key": ADMIN}).status_code == 401
    assert httpx.get(url, headers=ADMIN_HEADERS).status_code == 200


def test_dashboard_off_without_an_admin_key(gw, monkeypatch):
    response = httpx.get(f"{gw.url}/dashboard/api/summary", headers=ADMIN_HEADERS)
    assert response.status_code == 403
    assert "TIERGATE_ADMIN_KEY" in response.json()["error"]["message"]


def test_admin_key_from_the_environment(fake, start_gateway, monkeypatch):
    monkeypatch.setenv("TIERGATE_ADMIN_KEY", ADMIN)
    live = start_gateway(three_tier_config(fake))
    assert httpx.get(f"{live.url}/dashboard/api/summary", headers=ADMIN_HEADERS).status_code == 200


def test_page_and_assets_are_served_from_the_package(dash):
    page = httpx.get(f"{dash.url}/dashboard")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    # no third-party asset: every src/href is on this origin
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page.text):  # the icon is a data: URI
        assert ref.startswith("/dashboard/assets/")
        assert httpx.get(f"{dash.url}{ref}").status_code == 200
    assert httpx.get(f"{dash.url}/dashboard/assets/../hub.py").status_code == 404


def test_summary_reflects_traffic(dash, fake):
    traffic(dash, fake)
    data = httpx.get(f"{dash.url}/dashboard/api/summary", headers=ADMIN_HEADERS).json()
    totals = data["totals"]
    assert totals["requests"] == 5
    assert totals["rejected"] == 1
    assert totals["fallbacks"] == 1
    assert totals["cost_usd"] == pytest.approx(sum(e.cost_usd for e in dash.ledger.entries))
    assert totals["savings_usd"] > 0
    assert data["tiers"] == {"budget": 2, "standard": 1, "premium": 1}
    models = {m["model"]: m for m in data["models"]}
    assert models["small-model"]["requests"] == 2
    assert models["small-model"]["p95_ms"] > 0
    assert data["recent"][0]["status"] == 404
    assert "rules" in data["recent"][-1]["reasons"]
    quality = {(q["route"], q["model"]): q for q in data["quality"]}
    assert quality[("auto", "small-model")]["average"] == 1.0
    assert data["circuits"]["small-model@upstream"] == "closed"


# -- in a real browser -----------------------------------------------------------------------


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (.venv/bin/pip install playwright)")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return sync_playwright


@pytest.fixture
def page():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        context = browser.new_context(viewport={"width": 1440, "height": 1100})
        # No internet: any request that leaves this machine (a CDN font, script or image)
        # is refused and recorded, so a test can prove the page never needs one.
        external: list[str] = []

        def offline(route):
            url = route.request.url
            if url.startswith(("http://127.0.0.1", "http://localhost", "data:")):
                route.continue_()
            else:
                external.append(url)
                route.abort()

        context.route("**/*", offline)
        page = context.new_page()
        page.external = external
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        yield page
        browser.close()


def _shot(page, name):
    target = os.environ.get("TIERGATE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name), full_page=True)


def test_browser_refuses_without_a_key(dash, page):
    page.goto(f"{dash.url}/dashboard")
    page.wait_for_selector("#login-form", state="visible")
    assert page.is_hidden("#board")
    page.fill("#admin-key", "not-the-key")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=login-error]", state="visible")
    assert "wrong admin key" in page.inner_text("[data-testid=login-error]")
    assert page.is_hidden("#board")
    _shot(page, "dashboard-refused.png")
    # the only error the page met is the refusal itself
    assert all("401" in e for e in page.errors), page.errors


def test_browser_shows_the_traffic(dash, fake, page):
    from playwright.sync_api import expect

    traffic(dash, fake)
    page.goto(f"{dash.url}/dashboard")
    page.fill("#admin-key", ADMIN)
    page.click("button[type=submit]")
    page.wait_for_selector("#board", state="visible")
    expect(page.locator("#kpi-requests")).to_have_text("5")
    assert page.url == f"{dash.url}/dashboard"  # the key never lands in the URL
    spend = sum(e.cost_usd for e in dash.ledger.entries)
    assert page.inner_text("[data-testid=kpi-spend]").startswith("$")
    assert page.inner_text("[data-testid=kpi-fallbacks]") == "20.0%"  # 1 of 5
    assert spend > 0
    for chart in (
        "chart-spend",
        "chart-traffic",
        "chart-tiers",
        "chart-cost",
        "chart-latency",
        "chart-quality",
    ):
        assert page.locator(f"[data-testid={chart}] svg").count() == 1, chart
    assert page.locator("[data-testid=recent] tbody tr").count() == 5
    assert "small-model" in page.inner_text("[data-testid=chart-cost]")
    assert "auto · small-model" in page.inner_text("[data-testid=chart-quality]")
    # live: new traffic shows up without a reload
    fake.enqueue(Reply("again"))
    dash.client().chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    # (expect, not wait_for_function: the page's CSP forbids the eval that one needs)
    expect(page.locator("#kpi-requests")).to_have_text("6", timeout=10_000)
    _shot(page, "dashboard.png")
    # the key lives in this tab's sessionStorage only, never in a cookie or localStorage
    assert page.evaluate("sessionStorage.getItem('tiergate.adminKey')") == ADMIN
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    page.click("#logout")
    page.wait_for_selector("#login-form", state="visible")
    assert page.evaluate("sessionStorage.getItem('tiergate.adminKey')") is None
    assert page.errors == []
    assert page.external == []  # every asset came from tiergate itself


def test_browser_shows_a_quality_alert_banner(fake, start_gateway, page):
    from playwright.sync_api import expect

    live = start_gateway(
        three_tier_config(
            fake,
            f"""
            observability: {{admin_key: {ADMIN}, bucket: 2}}
            quality: {{threshold: 0.6, min_samples: 2}}
            """,
        )
    )
    page.goto(f"{live.url}/dashboard")
    page.fill("#admin-key", ADMIN)
    page.click("button[type=submit]")
    page.wait_for_selector("#board", state="visible")
    expect(page.locator("[data-testid=alerts]")).to_be_empty()
    for _ in range(2):  # two thumbs-down: the moving average drops below the threshold
        fake.enqueue(Reply("meh"))
        raw = live.client().chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
        r = httpx.post(
            f"{live.url}/v1/feedback",
            headers={"authorization": "Bearer tg-test-key"},
            json={"request_id": raw.headers["x-tiergate-request-id"], "thumbs": "down"},
        )
        assert r.status_code == 200, r.text
    banner = page.locator("[data-testid=alerts] .alert")
    expect(banner).to_have_count(1, timeout=10_000)  # live: no reload
    text = banner.inner_text()
    assert "Quality alert: auto on small-model" in text and "threshold 0.6" in text
    _shot(page, "dashboard-quality-alert.png")
    assert page.errors == [] and page.external == []


def test_summary_error_rate_counts_failed_requests_not_client_mistakes(dash, fake):
    fake.enqueue(Reply("fine"))
    dash.client().chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    fake.enqueue(*[Fault(status=503)] * 8)  # every attempt and fallback fails: a 503
    with pytest.raises(Exception):
        dash.client().chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(Exception):  # a client mistake: rejected, not an error
        dash.client().chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    totals = httpx.get(f"{dash.url}/dashboard/api/summary", headers=ADMIN_HEADERS).json()["totals"]
    assert (totals["requests"], totals["errors"], totals["rejected"]) == (3, 1, 1)
    assert totals["error_rate"] == pytest.approx(1 / 3)
