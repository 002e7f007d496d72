"""A local preview of the doc site, for machines without Quarto: nbdev's own processing of the notebooks
(what `nbdev_proc_nbs` does before Quarto renders), then one HTML page per notebook with a navigation list.
Run `python tools/preview.py` from the repository root; the pages land in artifacts/site/. It says what it is doing as
it goes (nbdev's processing takes a while), then one line: how many pages, where, and how long it took."""
import html, re, sys, time
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parents[1]

def sidebar_order(nbs: Path) -> list:
    "Notebook names in the order of the site's sidebar (nbs/sidebar.yml)."
    def walk(items):
        for it in items:
            if isinstance(it, str): yield it
            else: yield from walk(it.get('contents', []))
    return list(walk(yaml.safe_load((nbs/'sidebar.yml').read_text())['website']['sidebar']['contents']))

def process(root=ROOT, say=lambda msg: None) -> Path:
    "Run nbdev's notebook processing (show_doc, hidden cells, directives) into root/_proc; `say` gets each file's name."
    import os
    import nbdev.serve_drv as drv
    from nbdev.serve import proc_nbs
    one = drv.main
    def each(o): say(f'  {Path(o[0]).name}'); return one(o)
    old = os.getcwd(); os.chdir(root); drv.main = each   # proc_nbs looks it up on each call (n_workers=0: in this process)
    try: return Path(proc_nbs(force=True, n_workers=0))
    finally: os.chdir(old); drv.main = one

def _front_matter(nb) -> dict:
    "The front matter nbdev made from the notebook's title and summary (a raw cell between --- lines)."
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.startswith('---'): return yaml.safe_load(c.source.strip().strip('-')) or {}
    return {}

def _as_heading(nb):
    "Put the title and summary back as a heading, in place of the front matter that only Quarto reads."
    fm = _front_matter(nb)
    import nbformat
    head = nbformat.v4.new_markdown_cell(f"# {fm.get('title', 'mnist37')}\n\n> {fm.get('description', '')}")
    nb.cells = [head] + [c for c in nb.cells if not (c.cell_type == 'raw' and c.source.startswith('---'))]
    return fm.get('title', 'mnist37')

def _as_quarto_would(nb):
    "Hide the input of `#| echo: false` cells, and drop Quarto-only link attributes from show_doc output."
    for c in nb.cells:
        if c.cell_type != 'code': continue
        if '#| echo: false' in c.source: c.metadata.setdefault('tags', []).append('echo-false')
        for o in c.get('outputs', []):
            md = o.get('data', {}).get('text/markdown')
            if md: o['data']['text/markdown'] = re.sub(r'\{target="_blank"[^}]*\}', '', md)

def title_html(title: str) -> str:
    "A page title for the navigation list: escaped, with `code` in backticks shown as code (as Quarto's sidebar does)."
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(title))

def build(out=ROOT/'artifacts'/'site', root=ROOT, say=lambda msg: None) -> list:
    "Write one HTML page per notebook of the sidebar, each with the navigation list; return the pages. `say` gets progress."
    names = sidebar_order(root/'nbs')
    say(f'processing {len(names)} notebooks as nbdev does before Quarto renders (nbdev_proc_nbs)...')
    import nbformat
    from nbconvert import HTMLExporter
    proc = process(root, say)
    say('rendering the pages (nbconvert):')
    nbs = {n: nbformat.read(proc/n, as_version=4) for n in names}
    titles = {n: _as_heading(nb) for n, nb in nbs.items()}
    page = lambda n: 'index.html' if n == 'index.ipynb' else n.replace('.ipynb', '.html')
    nav = '<nav id="site-nav"><ul>' + ''.join(f'<li><a href="{page(n)}">{title_html(titles[n])}</a></li>' for n in names) + '</ul></nav>'
    style = '<style>#site-nav{position:fixed;left:0;top:0;width:210px;height:100%;overflow:auto;background:#f4f6fb;font:13px sans-serif;padding:8px}#site-nav li{margin:4px 0}body{margin-left:230px!important}</style>'
    out.mkdir(parents=True, exist_ok=True)
    from traitlets.config import Config
    cfg = Config(); cfg.TagRemovePreprocessor.remove_input_tags = {'echo-false'}; cfg.TagRemovePreprocessor.enabled = True
    for nb in nbs.values(): _as_quarto_would(nb)
    exporter = HTMLExporter(template_name='lab', config=cfg)
    pages = []
    for i, n in enumerate(names, 1):
        say(f'  [{i}/{len(names)}] {page(n)}')
        body, _ = exporter.from_notebook_node(nbs[n])
        # links between notebooks point at their pages, as Quarto rewrites them
        body = re.sub(r'href="([\w.-]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{page(m[1] + ".ipynb")}{m[2] or ""}"', body)
        body = body.replace('<body', style + '<body', 1)
        body = re.sub(r'(<body[^>]*>)', r'\1' + nav.replace('\\', r'\\'), body, count=1)
        (out/page(n)).write_text(body, encoding='utf-8'); pages.append(out/page(n))
    return pages

if __name__ == '__main__':
    t0, out = time.perf_counter(), ROOT/'artifacts'/'site'
    pages = build(out, say=lambda msg: print(msg, flush=True))
    print(f'{len(pages)} pages in {out.relative_to(ROOT)}/ in {time.perf_counter() - t0:.0f} s: open {(out/"index.html").relative_to(ROOT)}')
