"""The studio end to end in a real headless Chromium (Debian's chromium + chromedriver)."""

import base64
import json
import os
import shutil
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from ads import privacy, studio, studio_server
from conftest import assert_labelled


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
EVENTS = [{"user": "u1", "type": "search", "text": "连衣裙", "ts": "2026-11-20T10:00:00"},
          {"user": "u1", "type": "click", "text": "red dress", "ts": "2026-11-21T10:00:00"}]


@pytest.fixture(scope="session")  # session: made once, whatever runs between
def server(trained_export, tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio")
    events = folder / "events.jsonl"
    events.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in EVENTS) + "\n{bad\n",
                      encoding="utf-8")
    app = studio.make_studio(model=trained_export, out_dir=str(folder / "creatives"),
                             events=str(events), num_candidates=2)
    running = studio.serve(app, port=0)
    yield f"http://127.0.0.1:{running.server_address[1]}", app
    running.shutdown()


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_api_rejects_bad_requests_with_reasons(server):
    base, _ = server
    cases = [({"text": ""}, "type some keywords"),
             ({"text": "x" * 10000}, "10,000 characters; at most 1,000"),
             ({"text": "dress", "count": 99}, "count must be between 1 and 8"),
             ({"text": "dress", "seed": "7"}, "seed must be a whole number"),
             ({"text": "qqqq zzzz"}, "names no product")]
    for body, message in cases:
        status, reply = post(base + "/api/generate", body)
        assert status == 400 and message in reply["error"], (body, reply)
    status, reply = post(base + "/api/score", {"text": "dress", "image": "data:text/plain;base64,"
                                               "aGVsbG8="})
    assert status == 400 and "not an image" in reply["error"]
    request = urllib.request.Request(base + "/api/generate", data=b"{nope", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 400
    with urllib.request.urlopen(base + "/", timeout=30) as response:
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_studio_serves_generate_and_compose_over_http(server, tmp_path):
    base, app = server
    status, reply = post(base + "/api/generate", {"text": "连衣裙", "count": 2, "seed": 3})
    assert status == 200 and [c["seed"] for c in reply["candidates"]] == [3, 4]
    status, read = post(base + "/api/generate", {"text": "新款黑色连衣裙 包邮", "count": 1})
    assert read["understood"] == {"drawn_as": "dress · black", "ignored": "新款 包邮"}
    candidate = tmp_path / "candidate.png"  # what the page shows is labelled too
    candidate.write_bytes(base64.b64decode(reply["candidates"][0]["png"]))
    assert_labelled(candidate)
    status, made = post(base + "/api/compose", {"prompt": "连衣裙", "seed": 3, "template": "hero",
                                                "size": "300x250", "headline": "新款连衣裙"})
    assert status == 200 and made["sidecar"]["seed"] == 3
    assert os.path.exists(os.path.join(app.out_dir, made["name"] + ".json"))
    # the preview is the creative that compose saves; the product is drawn once for both
    drawn, calls = app.source.generate, []
    app.source.generate = lambda *args: calls.append(args) or drawn(*args)
    try:
        request = {"prompt": "连衣裙", "seed": 5, "template": "split", "price": "¥199"}
        for headline in ("新款", "新款连衣裙"):
            status, preview = post(base + "/api/preview", {**request, "headline": headline})
            assert status == 200 and preview["copy"]["headline"] == headline
        status, made = post(base + "/api/compose", {**request, "headline": headline,
                                                    "size": "1200x628"})
    finally:
        del app.source.generate
    assert len(calls) == 1
    previews = {p["size"]: p["png"] for p in preview["previews"]}
    assert list(previews) == ["1080x1080", "1200x628", "300x250", "728x90"]
    shown = tmp_path / "preview.png"
    shown.write_bytes(base64.b64decode(previews["1200x628"]))
    saved = os.path.join(app.out_dir, made["name"] + ".png")
    np.testing.assert_array_equal(np.asarray(Image.open(shown)), np.asarray(Image.open(saved)))
    assert_labelled(shown, "AI生成")  # labelled as the saved file is (each with its own id)
    # shoppers are listed and asked for by pseudonym; their ids never reach the page
    shopper = privacy.pseudonym("u1", privacy.load_salt())
    assert app.users == [shopper]
    with urllib.request.urlopen(base + "/api/info", timeout=60) as response:
        assert "u1" not in response.read().decode()
    status, reply = post(base + "/api/user", {"user": shopper})
    assert status == 200 and reply["prompts"][0]["prompt"] == "red dress"
    assert reply["skipped_lines"] == 1


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (the README's test setup)")
    webdriver = pytest.importorskip("selenium.webdriver")
    downloads = str(tmp_path_factory.mktemp("downloads"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(condition, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def open_page(browser, base):
    browser.get(base + "/")
    wait_for(lambda: browser.execute_script("return document.body.dataset.ready === '1'"))
    return lambda element_id: browser.find_element("id", element_id)


def error_text(browser, field=None):
    """The page-wide error, or the one shown under `field` ("" when none is shown)."""
    return browser.execute_script("const e = document.getElementById(arguments[0]);"
                                  "return e.hidden ? '' : e.textContent;",
                                  f"{field}-error" if field else "error")


def preview_src(browser):
    return browser.execute_script("const p = document.getElementById('preview');"
                                  "return p.hidden ? '' : p.src;")


def up_to_date(browser, element):
    """The preview's src once the latest preview request has been answered."""
    return wait_for(lambda: element("preview-status").text == "Up to date"
                    and preview_src(browser))


def set_value(browser, element_id, value):
    """Set a field as a paste would (one input event), for values too long to type."""
    browser.execute_script("const e = document.getElementById(arguments[0]); e.value = "
                           "arguments[1]; e.dispatchEvent(new Event('input'));", element_id, value)


def test_a_marketer_types_picks_edits_the_preview_and_downloads(server, browser):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    base, app = server
    element = open_page(browser, base)
    element("count").clear()
    element("count").send_keys("2")
    element("prompt").send_keys("连衣裙", Keys.ENTER)  # Enter generates
    wait_for(lambda: len(browser.find_elements("css selector", ".candidate img")) == 2)
    assert element("understood").text == "drawn as: dress"  # what was read, under them
    cells = browser.find_elements("css selector", ".candidate")
    # the candidates come at the largest size: 4 x the tiny run's 16 px
    assert browser.execute_script("return arguments[0].querySelector('img').naturalWidth",
                                  cells[0]) == 64
    badges = [cell.find_element("css selector", ".badge").text for cell in cells]
    assert all(badge[:4].replace(".", "").lstrip("-").isdigit() for badge in badges), badges
    # the best-scored candidate starts chosen and its ad shows at once, in every size
    assert [c.get_attribute("aria-pressed") for c in cells].count("true") == 1
    up_to_date(browser, element)
    sizes = browser.find_elements("css selector", ".size img")
    assert [browser.execute_script("return arguments[0].naturalWidth", s) for s in sizes] == [
        1080, 1200, 300, 728]
    # by keyboard: the arrow keys move between candidates, Enter chooses
    cells[0].send_keys(Keys.ARROW_RIGHT)
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(lambda: cells[1].get_attribute("aria-pressed") == "true")
    before = up_to_date(browser, element)
    element("headline").clear()
    element("headline").send_keys("新款连衣裙 限时特惠")
    wait_for(lambda: "“新款连衣裙 限时特惠”" in element("creative-info").text)
    assert up_to_date(browser, element) != before  # the composed PNG changed, not a caption
    Select(element("template")).select_by_value("split")
    element("price").send_keys("¥199")
    browser.find_element("css selector", ".size[data-size='300x250']").click()
    wait_for(lambda: browser.execute_script(
        "return document.getElementById('preview').naturalWidth") == 300)
    wait_for(lambda: "· ¥199 ·" in element("creative-info").text)
    up_to_date(browser, element)
    element("download").click()
    downloaded = wait_for(lambda: [f for f in os.listdir(browser.downloads)
                                   if f.endswith(".png")])
    with Image.open(os.path.join(browser.downloads, downloaded[0])) as image:
        assert image.size == (300, 250)
    assert_labelled(os.path.join(browser.downloads, downloaded[0]), "AI生成")
    sidecar = json.load(open(os.path.join(app.out_dir, downloaded[0][:-4] + ".json"),
                             encoding="utf-8"))
    assert (sidecar["prompt"], sidecar["seed"], sidecar["size"]) == ("连衣裙", 1, "300x250")
    assert (sidecar["template"], sidecar["copy"]["headline"]) == ("split", "新款连衣裙 限时特惠")
    assert error_text(browser) == ""


def test_bad_inputs_are_named_where_they_were_typed(server, browser, tmp_path):
    base, _ = server
    element = open_page(browser, base)
    element("generate").click()  # empty keywords
    wait_for(lambda: "type some keywords" in error_text(browser, "prompt"))
    set_value(browser, "prompt", "d" * 10000)
    element("generate").click()
    wait_for(lambda: "at most 1,000" in error_text(browser, "prompt"))
    assert element("prompt").get_attribute("aria-invalid") == "true"
    element("prompt").clear()
    element("prompt").send_keys("red dress")
    set_value(browser, "count", "99")
    element("generate").click()
    wait_for(lambda: "between 1 and 8" in error_text(browser, "count"))
    assert error_text(browser, "prompt") == ""

    set_value(browser, "count", "1")
    element("generate").click()
    up_to_date(browser, element)
    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    set_value(browser, "headline", hostile)
    wait_for(lambda: hostile in element("creative-info").text)
    assert browser.execute_script("return window.pwned") is None
    assert not browser.find_elements("css selector", "#creative-info img, #creative-info script")
    set_value(browser, "headline", "x" * 10000)
    wait_for(lambda: "headline is 10000 characters; at most 200" in error_text(browser,
                                                                               "headline"))
    assert element("download").get_attribute("disabled")  # no download of a stale preview

    not_image = tmp_path / "notes.txt"
    not_image.write_text("not a picture")
    element("upload").send_keys(str(not_image))
    element("score-upload").click()
    wait_for(lambda: "not an image" in error_text(browser, "upload"))
    picture = tmp_path / "dress.png"
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(picture)
    element("upload").send_keys(str(picture))
    element("score-upload").click()
    wait_for(lambda: element("upload-result").text.startswith("score "))
    assert error_text(browser, "upload") == "" and error_text(browser) == ""


def test_shopper_suggestions_show_reasons(server, browser):
    base, _ = server
    element = open_page(browser, base)
    assert element("users-box").is_displayed()
    assert element("user").text.startswith("shopper-")  # listed by pseudonym
    element("suggest").click()
    items = wait_for(lambda: browser.find_elements("css selector", "#suggestions li"))
    assert items[0].find_element("css selector", "strong").text == "red dress"
    assert "click 'red dress'" in items[0].text


def write_impressions(path):
    path.write_text("creative,segment,impressions,clicks\n<b>hero</b>,all,1000,30\n"
                    "sale,all,1000,45\nbad,all,10,20\n", encoding="utf-8")
    return str(path)


def test_ctr_report_from_an_uploaded_log(server, browser, tmp_path):
    base, _ = server
    element = open_page(browser, base)
    element("ctr-file").send_keys(write_impressions(tmp_path / "impressions.csv"))
    element("ctr-run").click()
    wait_for(lambda: element("ctr-table").is_displayed())
    rows = [r.text for r in browser.find_elements("css selector", "#ctr-table tbody tr")]
    assert rows[0].startswith("<b>hero</b> 1,000 30 3.00%") and rows[1].startswith("sale")
    assert element("ctr-rejected").text == "line 4 rejected: clicks (20) exceed impressions (10)"
    assert browser.execute_script("return document.getElementById('ctr-chart').naturalWidth") > 0
    empty = tmp_path / "empty.csv"
    empty.write_text("creative,segment,impressions\n", encoding="utf-8")
    element("ctr-file").send_keys(str(empty))
    element("ctr-run").click()
    wait_for(lambda: "missing column(s) clicks" in error_text(browser, "ctr-file"))


# Every visible control's box against the viewport, and how far the page scrolls sideways.
OVERFLOW = """
const width = document.documentElement.clientWidth, outside = [];
for (const e of document.querySelectorAll('input, select, button, a[href], #preview, .size img')) {
  const box = e.getBoundingClientRect();
  if (e.offsetParent === null || box.width === 0) continue;  // hidden
  if (box.left < -0.5 || box.right > width + 0.5) outside.push(e.id || e.className || e.tagName);
}
return [document.documentElement.scrollWidth - width, outside];
"""
WIDTHS = {"desktop": (1280, 800), "wide": (1920, 1080), "phone": (390, 844)}


@pytest.fixture(scope="session")
def shipped_studio(tmp_path_factory):
    """The studio over the shipped model (models/adgan), as `python -m ads.studio` starts."""
    app = studio.make_studio(out_dir=str(tmp_path_factory.mktemp("shipped_creatives")))
    running = studio.serve(app, port=0)
    yield f"http://127.0.0.1:{running.server_address[1]}"
    running.shutdown()


def test_the_layout_fits_a_laptop_a_wide_screen_and_a_phone(shipped_studio, browser, tmp_path):
    """From the shipped model, so the screenshots (docs/studio/, written when
    ADGAN_WRITE_DOCS=1) show what a user sees; nothing may stick out at any width."""
    element = open_page(browser, shipped_studio)
    element("prompt").send_keys("红色连衣裙")
    element("generate").click()
    wait_for(lambda: len(browser.find_elements("css selector", ".candidate img")) == 4)
    element("price").send_keys("¥199")
    element("cta").send_keys("立即购买")
    up_to_date(browser, element)
    element("ctr-file").send_keys(write_impressions(tmp_path / "impressions.csv"))
    element("ctr-run").click()
    wait_for(lambda: element("ctr-table").is_displayed())
    folder = (os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "docs",
                           "studio") if os.environ.get("ADGAN_WRITE_DOCS") == "1"
              else str(tmp_path))
    os.makedirs(folder, exist_ok=True)
    try:
        for name, (width, height) in WIDTHS.items():
            metrics = {"width": width, "height": height, "deviceScaleFactor": 1,
                       "mobile": width < 500}
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            sideways, outside = wait_for(lambda: browser.execute_script(OVERFLOW))
            assert sideways <= 0 and outside == [], (name, sideways, outside)
            full = browser.execute_script("return document.documentElement.scrollHeight")
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {**metrics, "height": full})
            browser.execute_script("window.scrollTo(0, 0)")
            shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
            with open(os.path.join(folder, f"studio_{width}.png"), "wb") as f:
                f.write(base64.b64decode(shot["data"]))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def raw_request(base, head, body=b"", timeout=30):
    """Send raw bytes to the studio; (status, seconds until the reply)."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        reply = connection.recv(65536)
    return int(reply.split(b" ")[1]) if reply else None, time.monotonic() - started


@pytest.mark.parametrize("headers, body, status", [
    ("Content-Length: 12", b'{"text": "\xff\xfe"}'[:12], 400),  # not UTF-8
    ("Content-Length: abc", b"{}", 400),
    ("Content-Length: -1", b"{}", 400),
    ("", b"", 411),
    (f"Content-Length: {studio_server.MAX_BODY + 1}", b"", 413),
    ("Content-Length: 5000", b'{"text": "dress"', 400),  # shorter than announced
    ("Content-Length: 200003", b"[" * 100_000 + b"]" * 100_000 + b"{}x", 400),  # nesting
])
def test_malformed_requests_get_a_4xx_quickly(server, headers, body, status):
    base, _ = server
    head = "POST /api/generate HTTP/1.1\r\nHost: x" + (f"\r\n{headers}" if headers else "")
    got, seconds = raw_request(base, head, body)
    assert got == status
    assert seconds < studio_server.REQUEST_TIMEOUT + 5  # answered, not left hanging


def test_a_slow_client_does_not_hold_up_another(server):
    import concurrent.futures

    base, _ = server
    head = "POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 100"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(raw_request, base, head, b'{"te')  # then silence
        time.sleep(0.5)
        started = time.monotonic()
        with urllib.request.urlopen(base + "/api/info", timeout=30) as response:
            assert response.status == 200
        fast_seconds = time.monotonic() - started
        status, slow_seconds = slow.result()
    assert status == 400
    assert fast_seconds < slow_seconds  # the second client was answered while the first waited
