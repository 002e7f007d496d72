"The data module: sources, atomic building, hostile and broken archives, loading and its cache."
import os, shlex, shutil, signal, subprocess, sys, tarfile, time
from pathlib import Path
import pytest, torch
from PIL import Image
import numpy as np
from conftest import make_archive, png_bytes, SHARED_ARCHIVE
from mnist37.data import is_full, load_digits, load_sample, mnist_sample
from mnist37.datasets.source import EXPECTED, FALLBACK_COUNTS, FALLBACK_NAME, DataError, count_pngs, find_mnist_sample, install_archive

def test_fallback_is_announced_and_complete(home, capsys):
    path = mnist_sample()
    assert path == home/'data'/FALLBACK_NAME
    assert count_pngs(path) == FALLBACK_COUNTS and not is_full(path)
    assert 'OFFLINE FALLBACK' in capsys.readouterr().out
    labels = (path/'labels.csv').read_text().splitlines()
    assert labels[0] == 'name,label' and len(labels) == 1 + sum(FALLBACK_COUNTS.values())
    assert 'train/7/0.png,1' in labels and 'valid/3/400.png,0' in labels

def test_archive_from_environment_variable_installs_where_untar_data_looks(home, fake_archive, monkeypatch):
    monkeypatch.setenv('MNIST37_ARCHIVE', str(fake_archive))
    s = find_mnist_sample()
    assert (s.source, s.full, s.path) == ('archive', True, home/'data'/'mnist_sample')
    from fastai.data.external import untar_data, URLs, fastai_cfg
    fastai_cfg.cache_clear()
    assert untar_data(URLs.MNIST_SAMPLE) == s.path  # the book's own call now works offline
    assert find_mnist_sample().source == 'fastai cache'

def test_incomplete_cache_is_not_trusted_and_is_repaired(home, fake_archive):
    dest = install_archive(fake_archive)
    for f in list((dest/'valid'/'7').iterdir())[:5]: f.unlink()
    assert find_mnist_sample().source == 'fallback'  # an incomplete folder is never used as the full set
    assert find_mnist_sample(archive=fake_archive).full and is_full(dest)

def test_missing_archive_names_the_file(home, tmp_path):
    with pytest.raises(DataError, match='nowhere.tgz does not exist'): install_archive(tmp_path/'nowhere.tgz')

def test_an_archive_given_by_hand_is_checked_even_when_the_cache_has_the_data(home, tmp_path, fake_archive):
    install_archive(fake_archive)
    assert find_mnist_sample().source == 'fastai cache'
    for wrong, is_ in [(tmp_path/'nowhere.tgz', 'does not exist'), (tmp_path, 'is a folder, not a file')]:  # a typo, a folder
        with pytest.raises(DataError, match=f'archive {wrong} {is_}; .* leave it out'):
            find_mnist_sample(archive=wrong)
    assert find_mnist_sample(archive=fake_archive).source == 'fastai cache'   # a real file is fine (and not needed)

def test_truncated_archive(home, tmp_path, fake_archive):
    bad = tmp_path/'cut.tgz'; bad.write_bytes(fake_archive.read_bytes()[:len(fake_archive.read_bytes())//2])
    with pytest.raises(DataError, match='cut.tgz is not a readable gzip tarball.*truncated'): install_archive(bad)
    assert not (home/'data'/'mnist_sample').exists()
    assert not list((home/'data').glob('.mnist_sample.tmp-*'))  # nothing half-written left behind

def test_wrong_archive(home, tmp_path):
    small = make_archive(tmp_path/'small.tgz', counts={'train/3': 3, 'train/7': 3, 'valid/3': 1, 'valid/7': 1})
    with pytest.raises(DataError, match=r"small.tgz is not MNIST_SAMPLE.*'train/3': 3"): install_archive(small)
    assert not (home/'data'/'mnist_sample').exists()

@pytest.mark.parametrize('name,kind', [('../evil.txt', tarfile.REGTYPE), ('/tmp/evil.txt', tarfile.REGTYPE),
                                       ('mnist_sample/../../evil.txt', tarfile.REGTYPE), ('mnist_sample/link', tarfile.SYMTYPE),
                                       ('elsewhere/evil.txt', tarfile.REGTYPE)])
def test_hostile_archive_is_refused(home, tmp_path, name, kind):
    info = tarfile.TarInfo(name); info.type = kind
    if kind == tarfile.SYMTYPE: info.linkname = '/etc/passwd'
    else: info.size = 4
    bad = make_archive(tmp_path/'bad.tgz', counts={'train/3': 1, 'train/7': 1, 'valid/3': 1, 'valid/7': 1},
                       extra=[(info, b'evil' if kind == tarfile.REGTYPE else None)])
    with pytest.raises(DataError, match='refusing to extract'): install_archive(bad)
    assert not (tmp_path/'evil.txt').exists() and not Path('/tmp/evil.txt').exists()
    assert not (home/'data'/'mnist_sample').exists()

def test_foreign_files_in_an_incomplete_folder_are_not_deleted(home, fake_archive):
    dest = home/'data'/'mnist_sample'; dest.mkdir(parents=True); (dest/'my_notes.txt').write_text('mine')
    with pytest.raises(DataError, match='move it away'): install_archive(fake_archive)
    assert (dest/'my_notes.txt').read_text() == 'mine'

def _python(code, env, **kw):
    return subprocess.Popen([sys.executable, '-c', code], env={**os.environ, **env}, **kw)

def test_killed_extraction_is_repaired(home, fake_archive):
    env = {'FASTAI_HOME': str(home)}
    p = _python(f'from mnist37.datasets.source import install_archive; install_archive({str(fake_archive)!r})', env)
    data = home/'data'; deadline = time.time() + 60
    while time.time() < deadline and not any(count_pngs(t/'mnist_sample')['train/3'] > 100 for t in data.glob('.mnist_sample.tmp-*')):
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    assert list(data.glob('.mnist_sample.tmp-*')), 'the extraction was not caught part-way'
    assert not (data/'mnist_sample').exists()  # nothing that passes for complete
    assert find_mnist_sample().source == 'fallback'
    assert find_mnist_sample(archive=fake_archive).full
    assert not list(data.glob('.mnist_sample.tmp-*'))  # the leftovers were cleaned up

@pytest.mark.parametrize('use_archive', [True, False])
def test_processes_on_a_cold_cache_all_get_the_complete_folder(home, fake_archive, use_archive):
    env = {'FASTAI_HOME': str(home), 'MNIST37_ARCHIVE': str(fake_archive) if use_archive else ''}
    code = 'from mnist37.datasets.source import find_mnist_sample, count_pngs; s = find_mnist_sample(); print(s.path, s.full, sorted(count_pngs(s.path).items()))'
    procs = [_python(code, env, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1, outs
    assert outs[0].splitlines()[-1].split()[1] == str(use_archive)   # (after the archive's 'Installing' line)

def _read_only_run(ro: Path, code: str, env: dict):
    "Run `code` in a Python that sees `ro` as a read-only folder (a read-only mount as root, file modes otherwise)."
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555); return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True)
    if not shutil.which('unshare'): pytest.skip('root with no unshare: cannot make a read-only folder')
    cmd = f'mount -t tmpfs -o ro tmpfs {shlex.quote(str(ro))} && exec {shlex.quote(sys.executable)} -c {shlex.quote(code)}'
    r = subprocess.run(['unshare', '-m', 'sh', '-c', cmd], env=env, capture_output=True, text=True)
    if 'mount:' in r.stderr: pytest.skip(f'cannot mount a read-only folder here: {r.stderr.strip()}')
    return r

def test_unwritable_cache_folder_says_what_to_do(tmp_path):
    ro = tmp_path/'ro'
    env = {**os.environ, 'FASTAI_HOME': str(ro/'fastai'), 'MNIST37_OFFLINE': '1', 'MNIST37_ARCHIVE': ''}
    r = _read_only_run(ro, 'from mnist37.data import mnist_sample; mnist_sample()', env)
    assert r.returncode != 0
    assert 'DataError' in r.stderr and str(ro/'fastai') in r.stderr and 'FASTAI_HOME' in r.stderr, r.stderr

@pytest.mark.parametrize('what', ['archive', 'fallback'])
def test_full_disk_says_what_to_do(tmp_path, fake_archive, what):
    "A cache folder on a full disk (a 2 MiB tmpfs) gets a clear error, and nothing half-written stays."
    if os.geteuid() != 0 or not shutil.which('unshare'): pytest.skip('needs root and unshare to mount a small tmpfs')
    home = tmp_path/'small'; home.mkdir()
    code = (f'from mnist37.datasets.source import *; install_archive({str(fake_archive)!r})' if what == 'archive'
            else 'from mnist37.datasets.source import *; build_fallback()')
    code += '\nimport os; print(sorted(os.listdir(data_root())))'
    env = {**os.environ, 'FASTAI_HOME': str(home), 'MNIST37_OFFLINE': '1', 'MNIST37_ARCHIVE': ''}
    cmd = (f'mount -t tmpfs -o size=2m tmpfs {shlex.quote(str(home))} && {shlex.quote(sys.executable)} -c {shlex.quote(code)};'
           f' echo LEFT: $(ls -A {shlex.quote(str(home))}/data)')
    r = subprocess.run(['unshare', '-m', 'sh', '-c', cmd], env=env, capture_output=True, text=True)
    if 'mount:' in r.stderr: pytest.skip(f'cannot mount a tmpfs here: {r.stderr.strip()}')
    assert 'DataError: cannot write to' in r.stderr and 'No space left on device' in r.stderr and 'FASTAI_HOME' in r.stderr, r.stderr[-800:]
    left = r.stdout.split('LEFT:')[-1].split()
    assert not [f for f in left if f.startswith('.mnist') and 'tmp' in f or f in ('mnist_sample', 'mnist37_fallback')], left

def test_read_only_complete_cache_is_still_used(tmp_path, fake_archive):
    "A classroom share mounted read-only works when the data is already there (nothing needs writing)."
    home = tmp_path/'ro'
    env = {**os.environ, 'FASTAI_HOME': str(home), 'MNIST37_OFFLINE': '1', 'MNIST37_ARCHIVE': ''}
    subprocess.run([sys.executable, '-c', f'from mnist37.datasets.source import install_archive; install_archive({str(fake_archive)!r})'], env=env, check=True)
    code = 'from mnist37.data import *; p = mnist_sample(); print(len(load_digits(p/"valid"/"3")))'
    ro = tmp_path/'ro2'; env['FASTAI_HOME'] = str(ro/'home')
    cmd_env = {**env}
    # bind the filled home read-only over an empty folder
    ro.mkdir(); (ro/'home').mkdir()
    if os.geteuid() != 0: pytest.skip('needs root to bind-mount read-only')
    cmd = f'mount --bind {shlex.quote(str(home))} {shlex.quote(str(ro/"home"))} && mount -o remount,bind,ro {shlex.quote(str(ro/"home"))} && exec {shlex.quote(sys.executable)} -c {shlex.quote(code)}'
    r = subprocess.run(['unshare', '-m', 'sh', '-c', cmd], env=cmd_env, capture_output=True, text=True)
    if 'mount:' in r.stderr: pytest.skip(f'cannot mount read-only here: {r.stderr.strip()}')
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith('1010') and 'fastai cache' in r.stdout

@pytest.fixture
def digit_dir(tmp_path):
    d = tmp_path/'digits'; d.mkdir()
    for i in range(3): Image.fromarray(np.full((28, 28), 60*i, np.uint8)).save(d/f'{i}.png')
    return d

def test_load_digits_sorted_scaled_and_cached(home, digit_dir):
    first = load_digits(digit_dir)
    assert first.shape == (3, 28, 28) and first.dtype == torch.float32
    assert torch.equal(first[:, 0, 0], torch.tensor([0., 60., 120.])/255)
    cache = list((home/'data'/'mnist37_cache').glob('*.pt'))
    assert len(cache) == 1
    assert torch.equal(load_digits(digit_dir), first)
    cache[0].write_bytes(b'garbage')  # a damaged cache file is decoded again, not trusted
    assert torch.equal(load_digits(digit_dir), first)
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(digit_dir/'3.png')  # a changed folder is decoded again
    assert load_digits(digit_dir).shape == (4, 28, 28)

@pytest.mark.parametrize('make,match', [
    (lambda f: f.write_text('not an image'), 'bad.png is not a readable PNG'),
    (lambda f: f.write_bytes(png_bytes(np.zeros((28, 28), np.uint8))[:40]), 'bad.png is not a readable PNG'),
    (lambda f: Image.fromarray(np.zeros((32, 32), np.uint8)).save(f), 'bad.png is 32x32 in mode L'),
    (lambda f: Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(f), 'bad.png is 28x28 in mode RGB')])
def test_bad_image_files_are_named(home, digit_dir, make, match):
    make(digit_dir/'bad.png')
    with pytest.raises(DataError, match=match): load_digits(digit_dir)

def test_empty_folder(home, tmp_path):
    with pytest.raises(DataError, match='no PNG files in .*empty'): load_digits((tmp_path/'empty'))

@pytest.mark.skipif(not SHARED_ARCHIVE.exists(), reason='the shared MNIST_SAMPLE archive is not on this machine')
def test_real_archive_gives_the_lessons_counts(home, monkeypatch):
    monkeypatch.delenv('MNIST37_ALLOW_REPACKED', raising=False)  # fast.ai's own file: its digest is checked and matches
    s = find_mnist_sample(archive=SHARED_ARCHIVE)
    assert s.full and count_pngs(s.path) == EXPECTED
    assert [len(d) for d in load_sample(s.path)] == [6131, 6265, 1010, 1028]

def test_any_layout_uses_the_same_machinery(home, tmp_path):
    "install_archive, find_data and build_folder work for a data set described by another Layout (here a tiny MNIST-like one)."
    from conftest import make_mnist_archive
    from mnist37.datasets.source import Layout, build_folder, find_data, is_complete
    tiny = Layout('mnist_png', 'tiny MNIST', {'training/0': 2, 'testing/0': 1}, url='MNIST', checksum='none')
    archive = make_mnist_archive(tmp_path/'tiny.tgz', counts=tiny.counts)
    path, source, full = find_data(tiny, archive, 'MNIST37_TINY', fallback=lambda root: pytest.fail('fallback used'))
    assert (path, source, full) == (home/'data'/'mnist_png', 'archive', True) and is_complete(path, tiny.counts, ())
    assert find_data(tiny, None, 'MNIST37_TINY')[1] == 'fastai cache'
    wrote = []
    other = Layout('other', 'other', {'a': 1})
    def write(out): wrote.append(out); (out/'a').mkdir(parents=True); Image.fromarray(np.zeros((28, 28), np.uint8)).save(out/'a'/'0.png')
    assert build_folder(other, write) == home/'data'/'other' and build_folder(other, write) == home/'data'/'other'
    assert len(wrote) == 1  # the second call found it complete
    (home/'data'/'other'/'a'/'0.png').unlink(); (home/'data'/'other'/'notes.txt').write_text('mine')
    with pytest.raises(DataError, match='move it away'): build_folder(other, write)

def test_archive_digest_is_checked_with_an_escape_for_repacked_copies(home, fake_archive, monkeypatch):
    "An archive that is not fast.ai's file (damaged, or re-packed) is refused naming both digests, unless allowed."
    import hashlib
    from mnist37.datasets.source import ARCHIVE_SHA256
    monkeypatch.delenv('MNIST37_ALLOW_REPACKED', raising=False)
    got = hashlib.sha256(fake_archive.read_bytes()).hexdigest()
    with pytest.raises(DataError, match=f'sha256 is {got}, expected {ARCHIVE_SHA256}.*MNIST37_ALLOW_REPACKED=1'): install_archive(fake_archive)
    assert not (home/'data'/'mnist_sample').exists() and not list((home/'data').glob('.mnist_sample.tmp-*'))
    monkeypatch.setenv('MNIST37_ALLOW_REPACKED', '0')  # 0 means no
    with pytest.raises(DataError, match='sha256 is'): find_mnist_sample(archive=fake_archive)
    assert install_archive(fake_archive, repacked=True) == home/'data'/'mnist_sample' and is_full(home/'data'/'mnist_sample')
    shutil.rmtree(home/'data'/'mnist_sample')
    monkeypatch.setenv('MNIST37_ALLOW_REPACKED', '1')
    assert find_mnist_sample(archive=fake_archive).full
