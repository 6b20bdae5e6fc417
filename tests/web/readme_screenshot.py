"""Regenerate docs/web-page.png, the README's screenshot (1280x800, a 64-colour PNG):

    .venv/bin/python -m tests.web.readme_screenshot

It runs the browser tests' daemon until an hour of simulated time has passed (about 65 s), signs
in with the app token in Debian's chromium and photographs the Now and Plan sections."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from tests.web.conftest import APP, CHROMIUM, DaemonThread, sign_in

OUT = Path(__file__).resolve().parents[2] / "docs" / "web-page.png"


def main() -> None:
    d = DaemonThread(Path(tempfile.mkdtemp()))
    d.start()
    try:
        d.wait_for("17:00 simulated", lambda dm: dm.clock.now().hour >= 17, timeout=180)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            sign_in(page, d.base, APP)
            page.wait_for_selector("#plan-svg .price-bar")
            page.evaluate("window.scrollTo(0, 112)")  # the Now and Plan sections
            time.sleep(0.5)
            raw = Path(tempfile.mkdtemp()) / "page.png"
            page.screenshot(path=str(raw))
            browser.close()
    finally:
        d.stop()
    image = Image.open(raw).convert("RGB")
    small = image.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(OUT, optimize=True)
    print(f"{OUT}: {image.size[0]}x{image.size[1]}, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
