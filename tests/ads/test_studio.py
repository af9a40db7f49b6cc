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

from ads import privacy, studio
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
             ({"text": "qqqq zzzz"}, "no known token")]
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
    candidate = tmp_path / "candidate.png"  # what the page shows is labelled too
    candidate.write_bytes(base64.b64decode(reply["candidates"][0]["png"]))
    assert_labelled(candidate)
    status, made = post(base + "/api/compose", {"prompt": "连衣裙", "seed": 3, "template": "hero",
                                                "size": "300x250", "headline": "新款连衣裙"})
    assert status == 200 and made["sidecar"]["seed"] == 3
    assert os.path.exists(os.path.join(app.out_dir, made["name"] + ".json"))
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


def error_text(browser):
    return browser.execute_script("const e = document.getElementById('error');"
                                  "return e.hidden ? '' : e.textContent;")


def test_a_marketer_types_chinese_picks_composes_and_downloads(server, browser):
    base, app = server
    element = open_page(browser, base)
    element("prompt").send_keys("连衣裙")
    element("count").clear()
    element("count").send_keys("2")
    element("generate").click()
    cells = wait_for(lambda: browser.find_elements("css selector", ".candidate img"))
    wait_for(lambda: len(browser.find_elements("css selector", ".candidate")) == 2)
    # the candidates come at the largest size: 4 x the tiny run's 16 px
    assert browser.execute_script("return arguments[0].naturalWidth", cells[0]) == 64
    browser.find_elements("css selector", ".candidate")[1].click()
    for element_id, value in (("template", "split"), ("size", "300x250")):
        browser.execute_script(f"document.getElementById('{element_id}').value = '{value}'")
    element("headline").clear()
    element("headline").send_keys("新款连衣裙 限时特惠")
    element("price").send_keys("¥199")
    element("compose").click()
    wait_for(lambda: element("result").is_displayed())
    wait_for(lambda: browser.execute_script(
        "return document.getElementById('creative').naturalWidth") == 300)
    element("download").click()
    downloaded = wait_for(lambda: [f for f in os.listdir(browser.downloads)
                                   if f.endswith(".png")])
    with Image.open(os.path.join(browser.downloads, downloaded[0])) as image:
        assert image.size == (300, 250)
    assert_labelled(os.path.join(browser.downloads, downloaded[0]), "AI生成")
    sidecar = json.load(open(os.path.join(app.out_dir, downloaded[0][:-4] + ".json"),
                             encoding="utf-8"))
    assert sidecar["prompt"] == "连衣裙" and sidecar["seed"] == 1 and sidecar["size"] == "300x250"
    assert sidecar["copy"]["headline"] == "新款连衣裙 限时特惠"
    assert error_text(browser) == ""


def test_bad_inputs_in_the_page(server, browser, tmp_path):
    base, _ = server
    element = open_page(browser, base)
    element("generate").click()  # empty keywords
    wait_for(lambda: "type some keywords" in error_text(browser))
    browser.execute_script("document.getElementById('prompt').value = 'd'.repeat(10000)")
    element("generate").click()
    wait_for(lambda: "at most 1,000" in error_text(browser))

    element("prompt").clear()
    element("prompt").send_keys("red dress")
    element("generate").click()
    wait_for(lambda: browser.find_elements("css selector", ".candidate"))
    browser.find_elements("css selector", ".candidate")[0].click()
    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    browser.execute_script("document.getElementById('headline').value = arguments[0]", hostile)
    element("compose").click()
    wait_for(lambda: hostile in element("creative-info").text)
    assert browser.execute_script("return window.pwned") is None
    assert not browser.find_elements("css selector", "#creative-info img, #creative-info script")

    browser.execute_script("document.getElementById('headline').value = 'x'.repeat(10000)")
    element("compose").click()
    wait_for(lambda: "headline is 10000 characters; at most 200" in error_text(browser))

    not_image = tmp_path / "notes.txt"
    not_image.write_text("not a picture")
    element("upload").send_keys(str(not_image))
    element("score-upload").click()
    wait_for(lambda: "not an image" in error_text(browser))
    picture = tmp_path / "dress.png"
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(picture)
    element("upload").send_keys(str(picture))
    element("score-upload").click()
    wait_for(lambda: element("upload-result").text.startswith("score "))


def test_shopper_suggestions_show_reasons(server, browser):
    base, _ = server
    element = open_page(browser, base)
    assert element("users-box").is_displayed()
    assert element("user").text.startswith("shopper-")  # listed by pseudonym
    element("suggest").click()
    items = wait_for(lambda: browser.find_elements("css selector", "#suggestions li"))
    assert items[0].find_element("css selector", "strong").text == "red dress"
    assert "click 'red dress'" in items[0].text


def test_ctr_report_from_an_uploaded_log(server, browser, tmp_path):
    base, _ = server
    element = open_page(browser, base)
    log = tmp_path / "impressions.csv"
    log.write_text("creative,segment,impressions,clicks\n<b>hero</b>,all,1000,30\n"
                   "sale,all,1000,45\nbad,all,10,20\n", encoding="utf-8")
    element("ctr-file").send_keys(str(log))
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
    wait_for(lambda: "missing column(s) clicks" in error_text(browser))


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
    (f"Content-Length: {studio.MAX_BODY + 1}", b"", 413),
    ("Content-Length: 5000", b'{"text": "dress"', 400),  # shorter than announced
    ("Content-Length: 200003", b"[" * 100_000 + b"]" * 100_000 + b"{}x", 400),  # nesting
])
def test_malformed_requests_get_a_4xx_quickly(server, headers, body, status):
    base, _ = server
    head = "POST /api/generate HTTP/1.1\r\nHost: x" + (f"\r\n{headers}" if headers else "")
    got, seconds = raw_request(base, head, body)
    assert got == status
    assert seconds < studio.REQUEST_TIMEOUT + 5  # answered, not left hanging


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
