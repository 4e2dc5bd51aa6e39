"""The page of asr serve in a real headless Chromium (selenium): a file uploaded, and the
microphone (Chromium's fake capture device playing a WAV file) streamed over the WebSocket,
each showing the text of the tone model trained in the tests."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from asr.bench.serve import ServerProcess
from conftest import SR, tone_speech

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="Chromium is missing: apt-get install -y chromium chromium-driver (make setup does it as root)")

TEXT = "ab cd fed"


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Tone speech of TEXT with silence around it, as a 16-bit WAV (what Chromium's fake
    microphone plays)."""
    rng = np.random.default_rng(7)
    audio = np.concatenate([np.zeros(SR // 2, np.float32), tone_speech(TEXT, rng), np.zeros(2 * SR, np.float32)])
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(path, audio, SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def expected(tone_run, speech):
    """What the model hears in the file, offline (the set-up: it should be TEXT)."""
    import asr
    text = asr.load(tone_run / "exp", device="cpu").transcribe(speech).text
    assert text == TEXT, "the tone model misheard the test speech (test set-up)"
    return text


@pytest.fixture(scope="module")
def server(tone_run):
    with ServerProcess(tone_run / "exp", "--workers", "1") as s:
        yield s


@pytest.fixture(scope="module")
def browser(speech):
    from selenium import webdriver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={speech}%noloop",
                 "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def wait_for(driver, condition, seconds: float = 20.0):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: condition(d))


def text_of(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text.strip()


def open_page(driver, server) -> None:
    driver.get(server.url + "/")
    wait_for(driver, lambda d: text_of(d, "status") == "ready")


def test_upload_shows_the_text_and_word_times(browser, server, speech, expected):
    open_page(browser, server)
    browser.find_element("id", "file").send_keys(str(speech))
    browser.find_element("id", "upload").click()
    wait_for(browser, lambda d: text_of(d, "upload-text"))
    assert text_of(browser, "upload-text") == expected
    rows = browser.find_elements("css selector", "#upload-words tr")[1:]  # after the header
    words = [r.find_elements("tag name", "td") for r in rows]
    assert [w[0].text for w in words] == expected.split()
    starts = [float(w[1].text) for w in words]
    assert starts == sorted(starts) and 0.4 < starts[0] < 0.8  # after the half second of silence


def test_microphone_streams_partial_and_final_text(browser, server, expected):
    open_page(browser, server)
    browser.find_element("id", "record").click()
    # the fake microphone plays the file once: a final comes when the pause after it is heard
    wait_for(browser, lambda d: d.execute_script("return window.asrLog.some(m => m.type === 'final')"))
    browser.find_element("id", "stop").click()
    wait_for(browser, lambda d: text_of(d, "status") == "stopped")
    log = browser.execute_script("return window.asrLog")
    assert log[0]["type"] == "ready" and log[0]["mode"] == "segments"
    assert text_of(browser, "mic-text") == expected
    assert any(m["type"] == "partial" for m in log)
    words = [w for m in log if m["type"] == "final" for w in m["words"]]
    assert [w["word"] for w in words] == expected.split()
    assert all(0 <= w["start"] < w["end"] < 5 for w in words)
    shown = browser.find_element("id", "finals").text
    assert all(w["word"] in shown for w in words) and "–" in shown  # words with their times
