"""End to end in a real browser: `cmrsearch serve` on localhost over a small indexed
phantom archive, driven by Playwright in Debian's headless Chromium. Sign in, search,
see result cards whose cine really plays, open a study, collect it, export the ZIP.
A screenshot of the results page is kept in test-artifacts/."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import index_phantom, point_at, untrained_checkpoint
from playwright.sync_api import Page, expect, sync_playwright

from cmrsearch.accounts import add_user
from cmrsearch.cli import main
from phantom.archive import generate

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own download fails here
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
USER, PASSWORD = "dr.ada", "a long test password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser")
    generate(root / "archive", 8, seed=11, style="internal", workers=2, size="small")
    untrained_checkpoint(root / "model")
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, root / "home", f"sqlite:///{root / 'catalog.sqlite'}")
        mp.setenv("CMRSEARCH_MODEL", str(root / "model"))
        mp.setenv("CMRSEARCH_USERS_FILE", str(root / "users"))
        assert main(["db", "upgrade"]) == 0
        index_phantom(root / "archive")
        assert main(["embed"]) == 0
        add_user(root / "users", USER, PASSWORD)
        port = free_port()
        log = (root / "serve.log").open("w")
        process = subprocess.Popen(
            [Path(sys.executable).parent / "cmrsearch", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (root / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "cmrsearch serve did not answer in 120 s"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Page]:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(90_000)
        # Assertions wait as long as actions: on a loaded 2-core machine a Streamlit rerun
        # after sign-in took longer than Playwright's 5 s default for `expect`.
        expect.set_options(timeout=90_000)
        yield context.new_page()
        expect.set_options(timeout=5_000)
        browser.close()


def test_sign_in_search_play_collect_export(server: str, page: Page) -> None:
    page.goto(server)
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password", exact=True).fill("wrong password!!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Search the archive")).to_be_visible()

    box = page.get_by_label("Describe what you are looking for")
    box.fill("dilated left ventricle with impaired function")
    box.press("Enter")
    open_buttons = page.get_by_role("button", name="Open study")
    expect(open_buttons.first).to_be_visible()
    expect(open_buttons).to_have_count(8)  # every study of the archive, one card each
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-results.png"))

    # A card's cine plays: its pixels change over time (LGE stills say no frame rate).
    cine = page.locator('[data-testid="stImage"]').filter(has_text="frames/s").first.locator("img")
    expect(cine).to_be_visible()
    shots = set()
    for _ in range(6):
        shots.add(cine.screenshot())
        page.wait_for_timeout(150)
    assert len(shots) >= 3, "the cine does not animate"

    open_buttons.first.click()
    expect(page.get_by_role("heading", name="Study of patient")).to_be_visible()
    expect(page.get_by_role("tab", name="SAX")).to_be_visible()
    page.get_by_label("Collection", exact=True).click()
    page.get_by_role("option", name="New collection…").click()
    page.get_by_label("Name of a new collection").fill("Browser teaching file")
    page.get_by_label("Note for this case").fill("Dilated LV <b>not bold</b>")
    page.get_by_role("button", name="Add to collection").click()
    expect(page.get_by_text("Added to the collection.")).to_be_visible()

    page.get_by_text("Collections", exact=True).click()
    expect(page.get_by_role("heading", name="Teaching files")).to_be_visible()
    expect(page.get_by_text("Case 1")).to_be_visible()
    page.get_by_role("button", name="Prepare ZIP").click()
    download_button = page.get_by_role("button", name="Download ZIP")
    expect(download_button).to_be_visible()
    with page.expect_download() as info:
        download_button.click()
    data = Path(info.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        index = archive.read("browser-teaching-file/index.html").decode()
    assert any(n.startswith("browser-teaching-file/case-01/") and n.endswith(".gif") for n in names)
    assert "Dilated LV &lt;b&gt;not bold&lt;/b&gt;" in index
