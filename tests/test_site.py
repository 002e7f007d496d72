"""The doc-site preview in a real browser (headless Chromium): every page loads with no error output,
every image is decoded, every navigation link resolves. Screenshots go to artifacts/screenshots/."""
import functools, http.server, os, shutil, threading, urllib.request
import pytest
from preview import ROOT, build

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
DRIVER = shutil.which('chromedriver')
needs_browser = pytest.mark.skipif(not (CHROMIUM and DRIVER) and not os.getenv('CI'),
                                   reason='no headless Chromium and chromedriver here (Debian: apt-get install chromium chromium-driver; CI installs them)')
SHOTS = ROOT/'artifacts'/'screenshots'

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "Build the preview and serve it on localhost."
    out = ROOT/'artifacts'/'site'
    pages = build(out)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_port}', pages
    srv.shutdown()

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions(); opts.binary_location = CHROMIUM
    for a in ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync', '--window-size=1280,1600', f'--user-data-dir={tmp_path_factory.mktemp("chrome")}']:
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield drv
    drv.quit()

@needs_browser
def test_every_page_in_the_browser(site, browser):
    base, pages = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert {p.name for p in pages} >= {'index.html', '00_data.html', '05_neural_net.html', '06_questionnaire.html'}
    images_seen = 0
    for p in pages:
        browser.get(f'{base}/{p.name}')
        assert browser.execute_script('return document.readyState') == 'complete'
        text = browser.find_element('tag name', 'body').text
        assert 'Traceback' not in text and 'Error' not in browser.title, p.name
        errs = browser.execute_script("return [...document.querySelectorAll('[data-mime-type=\"application/vnd.jupyter.stderr\"]')].map(e => e.innerText)")
        assert not [e for e in errs if 'Error' in e or 'Traceback' in e], (p.name, errs)
        # this machine is offline: the pages' own images must load; outside badges (Colab, CI) cannot, so only their links are checked
        imgs = browser.execute_script('return [...document.images].filter(i => !/^https?:/.test(i.getAttribute("src") || ""))'
                                      '.map(i => [i.complete, i.naturalWidth, (i.src || "").slice(0, 40)])')
        colab = browser.execute_script("return document.querySelectorAll('a[href*=\"colab.research.google.com/github/mnist37/mnist37/blob/main/nbs/\"]').length")
        assert colab >= 1, (p.name, 'no Open-in-Colab badge on the page')
        assert all(ok and w > 0 for ok, w, _ in imgs), (p.name, [i for i in imgs if not (i[0] and i[1] > 0)])
        images_seen += len(imgs)
        links = browser.execute_script("return [...document.querySelectorAll('#site-nav a')].map(a => a.href)")
        assert '`' not in browser.find_element('id', 'site-nav').text, 'the navigation shows markdown backticks'  # shown as code
        assert len(links) == len(pages)
        for href in set(links) | set(browser.execute_script("return [...document.querySelectorAll('a')].map(a => a.href).filter(h => h.startsWith(location.origin))")):
            with urllib.request.urlopen(href.split('#')[0]) as r: assert r.status == 200, href
        h = browser.execute_script('return document.body.scrollHeight')
        browser.set_window_size(1280, min(max(h, 800), 12000))
        assert browser.save_screenshot(str(SHOTS/p.with_suffix('.png').name))
        browser.set_window_size(1280, 1600)
    assert images_seen >= 20  # the lesson's plots and digits
