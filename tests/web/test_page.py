"""The web page in headless Chromium against a real daemon on simulated time: the household's
view (plan chart, bump charge, preferences), the operator's view, and what another account's
token may see."""

import re
from datetime import datetime, timedelta

from playwright.sync_api import expect

from tests.web.conftest import ADMIN, APP, ARTIFACTS, NOBODY, OTHER, sign_in


def test_app_token_sees_the_plan_chart_and_a_bump_charge_appears(flexd_web, page):
    sign_in(page, flexd_web.base, APP)
    expect(page.get_by_role("heading", name="Site home")).to_be_visible()
    status, plan = flexd_web.get("/api/v1/sites/home/plan", APP)
    assert status == 200
    # The plan runs past tomorrow evening (prices are known to 23:00 tomorrow): the chart shows
    # exactly 24 hours of it, one price bar per half-hour.
    assert len(plan["starts"]) == 48
    bars = page.locator("#plan-svg .price-bar")
    expect(bars).to_have_count(48)
    assert bars.first.get_attribute("data-start") == plan["starts"][0]
    # The spring clock change is in the next 24 hours: the axis marks it, and the half-hour
    # after 00:30 is 02:00 local time.
    expect(page.locator("#plan-svg .clock-change")).to_have_count(1)
    times = [x["time"] for x in plan["local"]]
    i = times.index("00:30")
    assert times[i + 1] == "02:00"
    expect(page.locator("#plan-svg .ready-by")).to_have_count(1)
    expect(page.locator("#plan-svg .target")).to_have_count(1)
    # Now: the band and prices, and each device with its health.
    expect(page.locator("#tariff-now")).to_contain_text("Band now")
    expect(page.locator('#devices-table tr[data-device="home-charger"]')).to_contain_text(
        "plugged in"
    )
    card = page.locator('.charger[data-device="home-charger"]')
    # 16:00 on IO Go is outside 23:30-05:30: a bump is billed at peak, and the page says so.
    expect(card.locator(".peak-warning")).to_be_visible()
    expect(card.locator(".peak-warning")).to_contain_text("billed at the peak rate")
    expect(card.locator(".dispatches .boost")).to_have_count(0)
    with page.expect_request(lambda r: r.method == "POST" and "bump-charge" in r.url) as sent:
        card.get_by_role("button", name="Bump charge").click()
    key = sent.value.headers["idempotency-key"]
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    expect(card.locator(".bump-msg")).to_contain_text("BOOST until")
    expect(card.locator(".dispatches .boost").first).to_contain_text("BOOST")
    status, got = flexd_web.get("/api/v1/devices/home-charger/dispatches", APP)
    boosts = [d for d in got["dispatches"] if d["type"] == "BOOST"]
    assert len(boosts) == 1 and boosts[0]["status"] == "planned"
    # The page's key makes a repeat of its request harmless: the same answer, nothing new.
    status, again = flexd_web.post("/api/v1/devices/home-charger/bump-charge", APP, {},
                                   {"Idempotency-Key": key})  # fmt: skip
    assert status == 202 and again["id"] == boosts[0]["id"]
    # ... and cancel it.
    cancel = card.get_by_role("button", name="Cancel bump")
    expect(cancel).to_be_enabled()
    cancel.click()
    expect(card.locator(".bump-msg")).to_contain_text("cancelled")
    expect(cancel).to_be_disabled()
    status, got = flexd_web.get("/api/v1/devices/home-charger/dispatches", APP)
    [boost] = [d for d in got["dispatches"] if d["type"] == "BOOST"]
    ran = datetime.fromisoformat(boost["end"]) - datetime.fromisoformat(boost["start"])
    assert ran < timedelta(minutes=30)  # a bump runs an hour: this one ended at the cancel
    expect(page.locator("#freshness")).to_contain_text("Live: updated")


def test_ready_by_changes_and_an_invalid_one_is_refused_next_to_its_field(flexd_web, page):
    sign_in(page, flexd_web.base, APP)
    card = page.locator('.charger[data-device="home-charger"]')
    field = card.get_by_label("Ready by on weekdays")
    expect(field).to_have_value("07:00")
    field.fill("06:30")
    card.get_by_role("button", name="Save preferences").click()
    expect(card.locator(".prefs-msg")).to_contain_text("Saved")
    _, prefs = flexd_web.get("/api/v1/devices/home-charger/preferences", APP)
    assert prefs["weekday_ready_by"] == "06:30"

    field.fill("12:00")  # after 11:00: the API refuses it and names the field
    card.get_by_role("button", name="Save preferences").click()
    error = card.locator("#home-charger-weekday_ready_by-error")
    expect(error).to_have_text("must be between 04:00 and 11:00")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
    _, prefs = flexd_web.get("/api/v1/devices/home-charger/preferences", APP)
    assert prefs["weekday_ready_by"] == "06:30"  # nothing changed
    # A good value clears the error.
    field.fill("07:30")
    card.get_by_role("button", name="Save preferences").click()
    expect(card.locator(".prefs-msg")).to_contain_text("Saved")
    expect(error).to_have_text("")
    expect(field).not_to_have_attribute("aria-invalid", "true")


def test_admin_sees_both_sites_and_the_offline_device(flexd_web, page):
    sign_in(page, flexd_web.base, ADMIN)
    rows = page.locator("#sites-table tbody tr")
    expect(rows).to_have_count(2)
    away = page.locator('#sites-table tr[data-site="away"]')
    expect(away).to_contain_text("1 offline: away-battery")
    expect(page.locator('#sites-table tr[data-site="home"] td').nth(2)).to_have_text("0")
    # Sortable: by site name ascending, then descending.
    header = page.get_by_role("button", name="Site", exact=True)
    header.click()
    expect(rows.first).to_have_attribute("data-site", "away")
    expect(page.locator('th[data-key="id"]')).to_have_attribute("aria-sort", "ascending")
    header.click()
    expect(rows.first).to_have_attribute("data-site", "home")
    # ... by keyboard too.
    page.get_by_role("button", name="Failed cycles").focus()
    page.keyboard.press("Enter")
    expect(page.locator('th[data-key="failed_cycles"]')).to_have_attribute("aria-sort", "ascending")
    # Each site links to its page.
    page.get_by_role("link", name="away").click()
    expect(page.get_by_role("heading", name=re.compile("Site away"))).to_be_visible()
    expect(page.locator('#devices-table tr[data-device="away-battery"] .health-offline')).to_have_text(
        "offline"
    )


def test_another_accounts_token_sees_nothing_of_them(flexd_web, page):
    # An account with no site here: no rows, and the other sites' pages are "not found".
    sign_in(page, flexd_web.base, NOBODY)
    expect(page.locator("#no-sites")).to_be_visible()
    expect(page.locator("#sites-table tbody tr")).to_have_count(0)
    for site in ("home", "away"):
        page.goto(f"{flexd_web.base}/#site={site}")
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        assert flexd_web.get(f"/api/v1/sites/{site}", NOBODY)[0] == 404
    assert "home-charger" not in page.content() and "away-battery" not in page.content()
    # The away account sees its own site only, never home's.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, flexd_web.base, OTHER)
    expect(page.get_by_role("heading", name="Site away")).to_be_visible()
    page.goto(f"{flexd_web.base}/#site=home")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert "home-charger" not in page.content()
    # The token lives in session storage, never in the address.
    assert OTHER not in page.url
    assert page.evaluate("sessionStorage.getItem('flexd.token')") == OTHER


def test_a_phone_can_sign_in_by_keyboard_and_read_the_page_without_sideways_scrolling(
    flexd_web, browser
):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)  # fmt: skip
    page = context.new_page()
    try:
        page.goto(flexd_web.base + "/")
        expect(page.get_by_label("API token")).to_be_visible()
        page.keyboard.press("Tab")  # the skip link first
        page.keyboard.press("Tab")  # the home link
        page.keyboard.press("Tab")
        expect(page.get_by_label("API token")).to_be_focused()
        page.keyboard.type(APP)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Site home")).to_be_visible()
        expect(page.locator("#plan-svg .price-bar")).to_have_count(48)
        box = page.locator("#plan-svg").bounding_box()
        assert box is not None and box["width"] <= 390
        # Wide tables scroll inside their own box; the page itself never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)
    finally:
        context.close()


def test_the_page_says_it_is_stale_when_flexd_stops_answering(flexd_web, page):
    page.clock.install()  # the page's own timers and Date, which time flows through as usual
    sign_in(page, flexd_web.base, APP)
    freshness = page.locator("#freshness")
    expect(freshness).to_contain_text("Live: updated")
    page.route("**/api/v1/**", lambda route: route.abort())  # flexd unreachable from here on
    page.clock.fast_forward(20_000)
    expect(freshness).to_contain_text("Stale: last update")
    expect(freshness).to_contain_text("cannot reach flexd")
    expect(freshness).to_have_class(re.compile("stale"))
    expect(page.get_by_role("status").filter(has_text="The page is stale")).to_have_count(1)
    page.unroute("**/api/v1/**")
    page.clock.fast_forward(5_000)
    expect(freshness).to_contain_text("Live: updated")


def test_no_peak_warning_for_a_bump_inside_the_off_peak_window(flexd_web, page):
    # The daemon's clock reads 16:xx; the page is shown the real answer with the UK time moved
    # into 23:30-05:30, where IO Go bills a bump at the off-peak rate.
    def night(route):
        answer = route.fetch()
        doc = answer.json()
        doc["now_local"]["time"] = "23:45"
        route.fulfill(response=answer, json=doc)

    page.route("**/api/v1/sites/home", night)
    sign_in(page, flexd_web.base, APP)
    card = page.locator('.charger[data-device="home-charger"]')
    expect(card.get_by_role("button", name="Bump charge")).to_be_visible()
    expect(page.locator("#freshness")).to_contain_text("daemon time 23:45 UK")
    expect(card.locator(".peak-warning")).to_be_hidden()


# WCAG relative-luminance contrast of each element's text against the first opaque background
# behind it (the page has no background images).
CONTRAST_JS = r"""
(sel) => {
  const lum = (c) => {
    const [r, g, b] = c.match(/[\d.]+/g).slice(0, 3).map((v) => {
      const x = Number(v) / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const opaque = (c) => !/rgba\(.*,\s*0\)$/.test(c) && c !== "transparent";
  return [...document.querySelectorAll(sel)].filter((el) => el.offsetParent !== null
      && el.textContent.trim() && !el.disabled).map((el) => {
    let bg = el;
    while (bg && !opaque(getComputedStyle(bg).backgroundColor)) bg = bg.parentElement;
    const fg = lum(getComputedStyle(el).color);
    const back = lum(bg ? getComputedStyle(bg).backgroundColor : "rgb(255,255,255)");
    const ratio = (Math.max(fg, back) + 0.05) / (Math.min(fg, back) + 0.05);
    return [el.tagName + "." + el.className, Math.round(ratio * 100) / 100];
  });
}
"""


def test_text_contrast_is_at_least_4_5_to_1(flexd_web, page):
    sign_in(page, flexd_web.base, APP)
    expect(page.locator("#plan-svg .price-bar")).to_have_count(48)
    sel = ("p, dt, dd, th, td, li, label, button, a, h2, h3, h4, summary, "
           "#freshness, .warn, .help, .error")  # fmt: skip
    ratios = page.evaluate(CONTRAST_JS, sel)
    assert len(ratios) > 40  # it measured the page, not nothing
    assert all(isinstance(r, float | int) and r == r for _, r in ratios), ratios  # no NaN
    low = [(what, r) for what, r in ratios if not r >= 4.5]
    assert low == [], low
