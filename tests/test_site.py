"""The course website in headless Chromium: build it (tools/build_site.py) into a temporary folder, serve it on a free
localhost port, visit every page, and check what a reader would see: each page loads with a title, every image
decodes, no link inside the site is broken, every chapter shows at least one figure. Requests that leave the site
are refused (the test runs offline) and must be MathJax only. Skips without chromium, mkdocs or mkdocs-jupyter.

Set MUG_NB_SCREENS=DIR to keep two screenshots there (a chapter with a figure, the learning path), and
MUG_NB_SITE=DIR to check a site built already instead of building one."""
import functools
import os
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions"]
CHAPTER_PAGE = re.compile(r"^nbs/([0-8]\d)_\w+\.html$")
ALLOWED_EXTERNAL = ("https://cdnjs.cloudflare.com/ajax/libs/mathjax/",)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocs_jupyter")
    pytest.importorskip("material")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import build_site
    finally:
        sys.path.remove(str(ROOT / "tools"))
    if os.environ.get("MUG_NB_SITE"):                 # a site built already (python tools/build_site.py --out DIR)
        out = Path(os.environ["MUG_NB_SITE"]).resolve()
    else:
        out = tmp_path_factory.mktemp("site") / "_site"
        t0 = time.time()
        build_site.build(out, quiet=True)
        print(f"site built in {time.time() - t0:.0f} s")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", out
    finally:
        server.shutdown()
        server.server_close()


def _ids(html: str) -> set[str]:
    return set(re.findall(r"""\s(?:id|name)\s*=\s*["']([^"']+)["']""", html))


IMAGES = """() => [...document.images].map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth, ok: i.complete}))"""
ALL_LOADED = """() => { for (const i of document.images) { i.loading = 'eager'; }
                       return [...document.images].every(i => i.complete); }"""


def test_every_page_loads_with_images_and_working_links(site, tmp_path):
    from playwright.sync_api import sync_playwright
    base, out = site
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html") if p.name != "404.html")
    chapters = [p for p in pages if CHAPTER_PAGE.match(p)]
    assert "index.html" in pages and "docs/learning_path.html" in pages, pages
    assert chapters, "no chapter pages were built"
    # the navigation is in course order: home, learning path, chapters, appendix, solutions, guides, model card
    nav = re.findall(r'class="md-nav__link[^"]*"[^>]*href="([^"#]+)"|href="([^"#]+)"[^>]*class="md-nav__link',
                     (out / "index.html").read_text(encoding="utf-8"))
    nav = list(dict.fromkeys(a or b for a, b in nav))
    order = ["index.html", "docs/learning_path.html"] + chapters + \
        [p for p in pages if re.match(r"^nbs/9\d_", p)] + [p for p in pages if p.startswith("solutions/")] + \
        ["docs/teachers_guide.html", "docs/mappers_guide.html", "MODEL_CARD.html"]
    listed = [p for p in nav if p in order]
    assert listed == [p for p in order if p in listed] and set(order) <= set(listed), (listed, order)
    t0 = time.time()
    external, links, problems = [], {}, []
    screens = Path(os.environ.get("MUG_NB_SCREENS") or tmp_path)
    for old in ("learning_path.png", "chapter.png"):
        (screens / old).unlink(missing_ok=True)
    screens.mkdir(parents=True, exist_ok=True)

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            ctx.route("**/*", route)
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            for rel in pages:
                resp = page.goto(f"{base}/{rel}", wait_until="load")
                if resp is None or resp.status != 200:
                    problems.append(f"{rel}: HTTP {resp and resp.status}")
                    continue
                if not page.title().strip():
                    problems.append(f"{rel}: no title")
                page.wait_for_function(ALL_LOADED, timeout=20_000)
                imgs = page.evaluate(IMAGES)
                problems += [f"{rel}: image does not show: {i['src'][:100]}" for i in imgs if not i["w"]]
                if rel in chapters and not any(i["w"] for i in imgs):
                    problems.append(f"{rel}: a chapter without a figure")
                for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                    if href.startswith(base):
                        links.setdefault(href, rel)
                if rel == "docs/learning_path.html":
                    page.screenshot(path=str(screens / "learning_path.png"))
                if rel in chapters and not (screens / "chapter.png").exists() and any(i["w"] > 200 for i in imgs):
                    page.locator(".jp-RenderedImage img").first.evaluate("e => e.scrollIntoView({block: 'center'})")
                    page.wait_for_timeout(300)
                    page.screenshot(path=str(screens / "chapter.png"))
        finally:
            browser.close()
    # every same-origin link: the file is served, and an anchor names an element of the page
    html_cache = {}
    for href, rel in sorted(links.items()):
        url, frag = urldefrag(href)
        path = unquote(urlparse(url).path)
        if url not in html_cache:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    html_cache[url] = r.read().decode("utf-8", "replace") if path.endswith((".html", "/")) else ""
            except urllib.error.HTTPError as e:
                html_cache[url] = None
                problems.append(f"{rel}: broken link {path} (HTTP {e.code})")
        if frag and html_cache[url] and unquote(frag) not in _ids(html_cache[url]):
            problems.append(f"{rel}: broken anchor {path}#{frag}")
    assert not problems, "\n".join(problems[:40])
    stray = [u for u in external if not u.startswith(ALLOWED_EXTERNAL)]
    assert not stray, f"pages ask the network for more than MathJax: {sorted(set(stray))[:10]}"
    assert not errors, errors[:5]
    assert (screens / "learning_path.png").exists() and (screens / "chapter.png").exists()
    print(f"{len(pages)} pages, {len(links)} internal links checked in {time.time() - t0:.0f} s")
