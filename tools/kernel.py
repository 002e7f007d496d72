"""Run notebooks in a real Jupyter kernel (ipykernel, through nbclient: what Jupyter, VS Code, Colab and
`jupyter nbconvert --execute` use), not in nbdev_test's in-process shell. Every cell runs, `#| slow` ones too.

    python tools/kernel.py [--data fallback|full] [--jobs N] [--lesson] [NOTEBOOK ...]   # default: every notebook in nbs/

prints one line per notebook (its time, or its first error) and exits 1 if any failed. A tool, not a test:
tests/test_kernel.py uses `run_notebook` from pytest (tests/pytest.ini puts tools/ on the path); .ci/colab runs this
file with the Colab stack's Python."""
import argparse, os, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

NBS = Path(__file__).resolve().parents[1]/'nbs'
TIMEOUT = 600  # seconds per cell
STARTUP = 300  # seconds for a kernel to start (nbclient's 60 are too few at CI's lowest priority on a busy machine)

def notebooks(folder=NBS):
    "Every notebook of the site, in name order."
    return sorted(p for p in Path(folder).glob('*.ipynb') if not p.name.startswith('_'))

# The sidebar's sections a student works through (on Colab too): the rest of the site is for instructors.
LESSON_SECTIONS = ('The lesson', 'Going further')

def lesson_notebooks(folder=NBS) -> list:
    "The notebooks of the sidebar's LESSON_SECTIONS (nbs/sidebar.yml), in the sidebar's order."
    import yaml
    items = yaml.safe_load((Path(folder)/'sidebar.yml').read_text())['website']['sidebar']['contents']
    sections = {it['section']: it.get('contents', []) for it in items if isinstance(it, dict) and 'section' in it}
    missing = [s for s in LESSON_SECTIONS if not sections.get(s)]
    if missing: raise ValueError(f"{Path(folder)/'sidebar.yml'} has no section {' or '.join(map(repr, missing))} with notebooks in it: "
                                 f"rename LESSON_SECTIONS in {Path(__file__).name} to the sections a student works through")
    return [Path(folder)/n for s in LESSON_SECTIONS for n in sections[s]]

def data_env(data: str, home: str|None = None) -> dict:
    """The environment for a kernel on `data`: 'fallback' (offline, fastai's home in the folder `home`, which the caller
    makes and removes) or 'full' (as the caller has it)."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYDEVD_DISABLE_FILE_VALIDATION': '1'}
    env.pop('MNIST37_ALLOW_REPACKED', None)  # set by tests/conftest.py for its synthetic archives: not what a person has
    if data == 'fallback':
        if not home: raise ValueError("data_env('fallback') needs a folder for fastai's home (an empty one: the fallback is built there)")
        env.update(FASTAI_HOME=str(home), MNIST37_OFFLINE='1')
        env.pop('MNIST37_ARCHIVE', None)
    return env

def problems(nb) -> list:
    "Error outputs and anything written to stderr, as short strings naming the cell."
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get('outputs', []):
            if out.output_type == 'error': found.append(f'cell {i}: {out.ename}: {out.evalue}')
            elif out.output_type == 'stream' and out.name == 'stderr' and out.text.strip():
                found.append(f'cell {i} wrote to stderr: {out.text.strip()[:300]}')
    return found

def executed(path, env: dict) -> tuple:
    "The notebook at `path` run in a fresh kernel with `env`, and the CellExecutionError that stopped it (None: it ran to the end)."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ); os.environ.clear(); os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=TIMEOUT, startup_timeout=STARTUP, kernel_name='python3',
                       resources={'metadata': {'path': str(path.parent)}}).execute(stderr=subprocess.DEVNULL)  # not the kernel's own log
        return nb, None
    except CellExecutionError as e: return nb, e
    finally: os.environ.clear(); os.environ.update(old)

def run_notebook(path, env: dict) -> tuple:
    "Execute the notebook at `path` in a fresh kernel with `env`; return (seconds, problems)."
    t0 = time.perf_counter()
    nb, error = executed(path, env)
    return time.perf_counter() - t0, problems(nb) or ([str(error).strip().splitlines()[-1]] if error else [])

def _one(args): return run_notebook(*args)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('notebooks', nargs='*', type=Path)
    p.add_argument('--data', choices=['fallback', 'full'], default='full')
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--lesson', action='store_true', help=f"only the notebooks a student works through: the sidebar's sections {' and '.join(map(repr, LESSON_SECTIONS))}")
    a = p.parse_args(argv)
    nbs = a.notebooks or (lesson_notebooks() if a.lesson else notebooks())
    failed = 0
    with tempfile.TemporaryDirectory(prefix='mnist37-fallback-') as home, ProcessPoolExecutor(a.jobs) as pool:
        env = data_env(a.data, home if a.data == 'fallback' else None)   # the fallback's home goes when the run ends
        for nb, (secs, found) in zip(nbs, pool.map(_one, [(nb, env) for nb in nbs])):
            failed += bool(found)
            print(f'{nb.name:32} {secs:6.1f} s  ' + ('ok' if not found else 'FAILED: ' + ' | '.join(found)), flush=True)
    print(f'{len(nbs) - failed}/{len(nbs)} notebooks ran without errors in a real kernel ({a.data} data, {sys.executable})')
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
