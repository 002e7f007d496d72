"""Refresh .ci/colab-stack.txt from Colab's published package list.

Google publishes what a Colab runtime holds as a `pip freeze` list (the repository googlecolab/backend-info,
file pip-freeze.txt). This keeps the packages named in .ci/colab-stack.txt and takes their versions from that
list; a line such as `torch @ https://.../torch-2.11.0%2Bcpu-...whl` becomes `torch==2.11.0` (PyPI's build of
the same version). Then run `bash .ci/colab` to test mnist37 on the new stack.

    python .ci/colab_stack.py path/to/pip-freeze.txt
"""
import re, sys
from pathlib import Path

STACK = Path(__file__).with_name('colab-stack.txt')

def versions(freeze: str) -> dict:
    "{normalised name: version} from `pip freeze` lines, both `name==v` and `name @ url-of-a-wheel`."
    found = {}
    for line in freeze.splitlines():
        m = (re.match(r'([A-Za-z0-9_.-]+)==([^\s;+]+)', line) or
             re.match(r'([A-Za-z0-9_.-]+) @ \S*/[^/]*?-(\d[^-/]*?)(?:%2B[^-/]*)?-[^/]*\.whl', line))
        if m: found[re.sub(r'[-_.]+', '-', m[1]).lower()] = m[2]
    return found

def main(freeze_file):
    have = versions(Path(freeze_file).read_text())
    names = [l.split('==')[0] for l in STACK.read_text().split() if l.strip()]
    missing = [n for n in names if re.sub(r'[-_.]+', '-', n).lower() not in have]
    if missing: sys.exit(f'{freeze_file} does not list {", ".join(missing)}: is it Colab\'s pip-freeze.txt?')
    new = '\n'.join(f'{n}=={have[re.sub(r"[-_.]+", "-", n).lower()]}' for n in names) + '\n'
    old = STACK.read_text()
    STACK.write_text(new)
    changed = sorted(set(new.split()) - set(old.split()))
    print(f'{STACK}: ' + (f'changed {", ".join(changed)}; now run: bash .ci/colab' if changed else 'already up to date'))

if __name__ == '__main__':
    if len(sys.argv) != 2: sys.exit(__doc__)
    main(sys.argv[1])
