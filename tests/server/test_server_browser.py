"""The web page in real headless Chromium (Debian's `chromium`, driven by Playwright).

The server runs on 127.0.0.1 in a thread with a tiny fast model for "starry-night" and a tiny AdaIN
decoder. The page is loaded with every request outside the server blocked (it must need nothing
else), a photo is uploaded, stylized with the preset and with an uploaded style image, and an
optimization job is started, watched and cancelled.

These tests skip, with the reason, only when Playwright or Chromium is missing; with
BRUSHWORK_REQUIRE_BROWSER=1 (set by .ci/run, which installs chromium) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from server_helpers import LiveServer, image_bytes, make_app, save_tiny_model, wait_for

CHROMIUM = os.environ.get("BRUSHWORK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REQUIRED = os.environ.get("BRUSHWORK_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (BRUSHWORK_REQUIRE_BROWSER=1: browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; it is in the dev extra)")
    if not Path(CHROMIUM).is_file():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does this)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory, vgg, save_tiny_adain):
    models = tmp_path_factory.mktemp("models")
    save_tiny_model(models)
    save_tiny_adain(models / "adain.safetensors")
    app = make_app(models, vgg, workers=1, max_steps=100000, preview_interval=0.2, max_size=256)
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("uploads")
    paths = {
        "photo": d / "photo.png",
        "phone": d / "phone.jpg",
        "corrupt": d / "corrupt.jpg",
        "notes": d / "notes.txt",
        "painting": d / "painting.png",
    }
    paths["painting"].write_bytes(image_bytes((40, 40), seed=5))
    paths["photo"].write_bytes(image_bytes((48, 32), seed=1))
    paths["phone"].write_bytes(image_bytes((40, 24), fmt="JPEG", exif_orientation=6))
    paths["corrupt"].write_bytes(image_bytes((48, 32), fmt="JPEG")[:200])
    paths["notes"].write_text("not a photo")
    return paths


@pytest.fixture
def page(browser, live):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.outside_requests = []
    page.errors = []

    def route(r):
        url = r.request.url
        if url.startswith(live.url) or url.startswith("data:") or url.startswith("blob:"):
            r.continue_()
        else:
            page.outside_requests.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30000)
    yield page
    context.close()


def set_range(page, selector, value):
    page.eval_on_selector(selector, "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }", str(value))


def test_page_loads_with_nothing_from_outside_and_lists_the_paintings(page, live, files):
    from brushwork.presets import list_style_presets

    cards = page.locator(".style-card:not(.upload-card)")
    assert cards.count() == len(list_style_presets())
    assert page.locator(".style-card .badge").count() == 1  # only starry-night has a model here
    wait_for(lambda: page.evaluate(
        "[...document.querySelectorAll('.style-card img.thumb')].slice(0, 4)"
        ".every(i => i.complete && i.naturalWidth > 0)"
    ), 30, what="thumbnails to load")
    assert page.locator("#upload-style-card").is_visible()
    assert page.locator("#go").is_disabled()  # no photo yet
    # Drag and drop a photo onto the drop zone.
    data = list(files["photo"].read_bytes())
    page.evaluate(
        """(bytes) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
            const drop = new DragEvent('drop', { dataTransfer: dt, bubbles: true });
            document.getElementById('dropzone').dispatchEvent(drop);
        }""",
        data,
    )
    page.wait_for_function("document.getElementById('photo-dims').textContent.includes('48')")
    assert page.locator("#photo-name").text_content() == "dropped.png"
    assert page.locator("#go").is_enabled()
    assert page.outside_requests == [] and page.errors == []


def test_phone_photo_preview_is_upright(page, files):
    page.set_input_files("#photo-input", str(files["phone"]))
    page.wait_for_function("document.getElementById('photo-preview').naturalWidth > 0")
    size = page.evaluate("[document.getElementById('photo-preview').naturalWidth, "
                         "document.getElementById('photo-preview').naturalHeight]")
    assert size == [24, 40]  # EXIF orientation 6: stored 40 x 24, shown portrait


def _run_and_get_result_size(page) -> list[int]:
    """Press Go, wait for the result image, return its natural [width, height]."""
    page.click("#go")
    page.wait_for_selector("#result-box:not([hidden])", timeout=60000)
    page.wait_for_function("document.getElementById('result-after').naturalWidth > 0")
    return page.evaluate("[document.getElementById('result-after').naturalWidth, "
                         "document.getElementById('result-after').naturalHeight]")


def test_stylize_with_a_preset_shows_the_result(page, files):
    page.set_input_files("#photo-input", str(files["photo"]))
    page.click(".style-card[data-style='starry-night']")
    assert page.is_checked("#method-fast")
    set_range(page, "#size", 64)
    set_range(page, "#strength", 80)
    assert _run_and_get_result_size(page) == [64, 43]
    link = page.locator("#download")
    assert link.get_attribute("href").startswith("blob:")
    assert link.get_attribute("download") == "brushwork-starry-night.png"
    assert "starry-night" in page.locator("#result-info").text_content()
    # The before/after slider moves the divide.
    set_range(page, "#compare-slider", 20)
    assert page.evaluate("document.getElementById('after-clip').style.clipPath") == "inset(0px 0px 0px 20%)"
    assert page.locator("#status").text_content() == "Done."
    assert page.errors == []


def test_own_style_image_is_painted_in_one_pass(page, files):
    page.set_input_files("#photo-input", str(files["photo"]))
    page.set_input_files("#style-input", str(files["painting"]))
    assert page.is_checked("#method-fast")  # the server has a one-pass method for any style image
    assert "adain" in page.locator("#method-note").text_content()
    set_range(page, "#size", 64)
    assert _run_and_get_result_size(page) == [64, 43]
    assert "(adain)" in page.locator("#result-info").text_content()
    assert page.locator("#download").get_attribute("download") == "brushwork-custom.png"
    # Optimize still takes the style image.
    page.check("#method-optimize")
    assert "Optimize" in page.locator("#method-note").text_content()
    assert page.errors == []


def test_a_painting_without_a_trained_model_is_painted_in_one_pass(page, files):
    page.set_input_files("#photo-input", str(files["photo"]))
    page.click(".style-card[data-style='udnie']")  # no trained model for udnie on this server
    assert page.is_enabled("#method-fast") and page.is_checked("#method-fast")
    assert "one pass (adain)" in page.locator("#method-note").text_content()
    set_range(page, "#size", 64)
    assert _run_and_get_result_size(page) == [64, 43]
    assert "(adain)" in page.locator("#result-info").text_content()
    assert page.errors == []


def test_optimization_job_shows_progress_and_cancels(page, live, files):
    page.set_input_files("#photo-input", str(files["photo"]))
    page.click(".style-card[data-style='udnie']")
    page.check("#method-optimize")
    assert "Optimize" in page.locator("#method-note").text_content()
    set_range(page, "#size", 64)
    page.click("#advanced summary")
    page.fill("#steps", "100000")
    page.click("#go")
    page.wait_for_selector("#cancel:not([hidden])", timeout=30000)
    page.wait_for_function(
        "(() => { const m = document.getElementById('progress-text').textContent.match(/Step (\\d+)/);"
        " return m && Number(m[1]) >= 3; })()", timeout=120000)
    page.wait_for_function("document.getElementById('live-preview').src.startsWith('data:image/jpeg')",
                           timeout=30000)
    assert page.locator("#live-preview").is_visible()
    width = page.evaluate("parseFloat(document.getElementById('bar-fill').style.width)")
    assert width > 0
    page.click("#cancel")
    page.wait_for_function("document.getElementById('status').textContent === 'Cancelled.'", timeout=60000)
    assert "Cancelled after" in page.locator("#progress-text").text_content()
    assert page.locator("#cancel").is_hidden() and page.locator("#go").is_enabled()
    # The worker is free again.
    jobs = live.app.state.jobs
    wait_for(lambda: jobs.stats()["running"] == 0, 30, what="the worker to be freed")
    assert page.errors == []


def test_a_video_is_painted_as_a_job_and_shown_in_a_player(page, files, tmp_path):
    """A video goes to POST /v1/video-jobs: only the fast method is offered, the steadiness slider appears,
    progress counts frames, and the painted MP4 comes back as a player with a download link."""
    pytest.importorskip("av")
    from clips import make_clip

    clip = make_clip(tmp_path / "holiday.mp4", w=64, h=48, frames=8, audio=True)
    page.set_input_files("#photo-input", str(clip))
    page.wait_for_function("document.getElementById('photo-dims').textContent.startsWith('64 × 48')")
    assert page.locator("#video-preview").is_visible() and page.locator("#photo-preview").is_hidden()
    page.click(".style-card[data-style='starry-night']")
    assert page.locator("#method-optimize").is_disabled() and page.is_checked("#method-fast")
    assert "frame by frame" in page.locator("#method-note").text_content()
    assert page.locator("#stability-field").is_visible()
    set_range(page, "#stability", 50)
    assert page.locator("#stability-out").text_content() == "50%"
    set_range(page, "#size", 64)
    requests = []
    page.on("request", lambda r: requests.append((r.method, r.url)) if r.method == "POST" else None)
    page.click("#go")
    page.wait_for_selector("#result-box:not([hidden])", timeout=120000)
    assert any(url.endswith("/v1/video-jobs") for _, url in requests)
    assert page.locator("#result-video").is_visible() and page.locator("#compare").is_hidden()
    page.wait_for_function("document.getElementById('result-video').readyState >= 1", timeout=30000)
    size = page.evaluate("[document.getElementById('result-video').videoWidth, "
                         "document.getElementById('result-video').videoHeight]")
    assert size == [64, 48]
    link = page.locator("#download")
    assert link.get_attribute("download") == "brushwork-starry-night.mp4"
    assert link.text_content() == "Download MP4"
    assert "Video: 8 frames" in page.locator("#result-info").text_content()
    assert page.locator("#status").text_content() == "Done."
    # A photo afterwards is painted as a photo again, shown against the original.
    page.set_input_files("#photo-input", str(files["photo"]))
    assert page.locator("#stability-field").is_hidden() and page.is_enabled("#method-optimize")
    assert _run_and_get_result_size(page) == [64, 43]
    assert page.locator("#compare").is_visible() and page.locator("#result-video").is_hidden()
    assert link.text_content() == "Download PNG"
    assert page.errors == []


def test_bad_photos_show_an_error(page, files):
    page.set_input_files("#photo-input", str(files["notes"]))
    page.wait_for_selector("#error:not([hidden])")
    assert "neither an image nor a video" in page.locator("#error").text_content()
    page.set_input_files("#photo-input", str(files["corrupt"]))  # looks like a JPEG; the server says no
    page.click(".style-card[data-style='starry-night']")
    page.click("#go")
    page.wait_for_selector("#error:not([hidden])", timeout=60000)
    page.wait_for_function("document.getElementById('error').textContent.includes('the photo')")
    assert page.locator("#go").is_enabled()


def test_the_network_styles_are_in_the_gallery_and_paint_in_one_pass(browser, vgg, files, tmp_path_factory):
    """With the built-in models: the 26 styles of Magenta's network show thumbnails the network painted,
    and one of them paints in one pass (optimize, which needs a painting, is not offered for it)."""
    models = tmp_path_factory.mktemp("builtin-models")
    save_tiny_model(models)
    app = make_app(models, vgg, builtin_models=True, max_size=256)
    with LiveServer(app) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        card = page.locator('.style-card[data-style="swirling-blue"]')
        card.scroll_into_view_if_needed()
        wait_for(lambda: card.locator("img").evaluate("i => i.complete && i.naturalWidth > 0"), timeout=60,
                 what="the network-painted thumbnail")
        card.click()
        assert page.locator("#method-optimize").is_disabled()
        assert page.locator("#method-fast").is_checked()
        assert "magenta-26" in page.locator("#method-note").inner_text()
        page.set_input_files("#photo-input", str(files["photo"]))
        set_range(page, "#size", 64)
        assert _run_and_get_result_size(page) == [64, 43]
        assert "magenta-26" in page.locator("#result-info").text_content()
        page.screenshot(path=os.environ.get("BRUSHWORK_SCREENSHOT") or str(tmp_path_factory.mktemp("shot") / "p.png"))
        assert not errors
        context.close()
