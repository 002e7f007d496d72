"Issue 11 §1-3: nothing a person made is destroyed, untrusted archives and images get bounded work and named errors, no stale or stuck state."
import io, json, os, struct, subprocess, sys, tarfile, time, zlib
from pathlib import Path
import numpy as np
import pytest, torch
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image
from conftest import add_bytes, make_archive, png_bytes
from mnist37.data import load_digits
from mnist37.datasets.source import (EXPECTED, MAX_PNG, DataError, Layout, build_folder, count_pngs, data_root, find_mnist_sample,
                            install_archive, is_complete)

FEW = {'train/3': 2, 'train/7': 2, 'valid/3': 1, 'valid/7': 1}
HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

def snapshot(root: Path) -> dict:
    "Every file under `root` (not following links) and its bytes."
    return {p: p.read_bytes() for p in root.rglob('*') if p.is_file() and not p.is_symlink()}

# ---- §1 student copies: tests/test_student.py

# ---- §1 data: a person's files at any depth of the data folder are never deleted

@pytest.mark.parametrize('mine', ['train/3/mine.png', 'train/notes.txt', 'valid/7/sub/deep.txt', 'valid/extra'])
def test_own_files_deep_in_the_data_folder_are_kept(home, fake_archive, mine):
    dest = install_archive(fake_archive)
    (dest/'valid'/'3'/'0.png').unlink()  # the folder is now incomplete, so installing again replaces it
    (dest/mine).parent.mkdir(parents=True, exist_ok=True)
    (dest/mine).mkdir() if mine.endswith('extra') else (dest/mine).write_bytes(png_bytes(np.zeros((28, 28), np.uint8)))
    before = snapshot(dest)
    with pytest.raises(DataError, match=f'holds files mnist37 did not write \\(.*{mine}.*move it away'): install_archive(fake_archive)
    assert snapshot(dest) == before and (dest/mine).exists()

def test_own_png_in_the_fallback_folder_is_kept(home):
    path = find_mnist_sample().path
    (path/'train'/'3'/'my_three.png').write_bytes(png_bytes(np.zeros((28, 28), np.uint8)))  # 401 files: incomplete
    with pytest.raises(DataError, match='train/3/my_three.png'): find_mnist_sample()
    assert (path/'train'/'3'/'my_three.png').is_file() and count_pngs(path)['train/3'] == 401

TINY = Layout('tiny', 'tiny', {'a/0': 3, 'b': 2}, ('labels.csv',))

def write_tiny(out: Path):
    for f, n in TINY.counts.items():
        (out/f).mkdir(parents=True, exist_ok=True)
        for i in range(n): (out/f/f'{i}.png').write_bytes(b'png')
    (out/'labels.csv').write_text('x')

@HYP
@given(extras=st.lists(st.tuples(st.lists(st.sampled_from(['a', '0', 'b', 'x', 'y.png', 'labels.csv']), min_size=0, max_size=2),
                                 st.sampled_from(['mine.png', 'notes.txt', 'z.png', 'dir'])), min_size=1, max_size=4))
def test_property_a_persons_files_survive_any_rebuild(tmp_path_factory, extras):
    "Any extra files or folders at any depth of an incomplete data folder: the rebuild refuses, naming one, and changes nothing."
    root = tmp_path_factory.mktemp('tiny'); build_folder(TINY, write_tiny, root); dest = root/'tiny'
    (dest/'b'/'1.png').unlink()
    made = []
    for folders, name in extras:
        p = dest.joinpath(*folders, name)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.mkdir() if name == 'dir' else p.write_text('mine')
            made.append(p)
        except (FileExistsError, NotADirectoryError, IsADirectoryError): pass  # that path is a file or folder already
    if not made: return
    before, complete = snapshot(dest), is_complete(dest, TINY.counts, TINY.files)  # a PNG of theirs may make it complete again
    try: build_folder(TINY, write_tiny, root)
    except DataError as e: assert not complete and 'move it away' in str(e)
    else: assert complete
    assert snapshot(dest) == before and all(p.exists() for p in made)

# ---- §2 archives: checked entry by entry against the data set before anything is written

def tiny_archive(fn, members, top='tiny'):
    "A tgz with TINY's valid content, then `members`: (name, bytes or None for a folder)."
    with tarfile.open(fn, 'w:gz', compresslevel=1) as tf:
        for f, n in TINY.counts.items():
            for i in range(n): add_bytes(tf, f'{top}/{f}/{i}.png', b'png')
        add_bytes(tf, f'{top}/labels.csv', b'x')
        for name, data in members:
            if data is None: info = tarfile.TarInfo(name); info.type = tarfile.DIRTYPE; tf.addfile(info)
            else: add_bytes(tf, name, data)
    return fn

SMALL = Layout('tiny', 'tiny', TINY.counts, TINY.files, max_png=100, max_file=200)

@HYP
@given(members=st.lists(st.tuples(st.lists(st.sampled_from(['a', '0', 'b', 'x', '.', '1.png', 'z.png', 'labels.csv']), min_size=0, max_size=3),
                                  st.sampled_from(['1.png', 'z.png', 'labels.csv', 'a', 'x.bin', '0']),
                                  st.sampled_from([None, 0, 3, 101, 201, 5000])), min_size=1, max_size=3))
def test_property_archives_with_extra_or_clashing_or_oversized_members_are_refused(tmp_path_factory, members):
    "Random extra, clashing and oversized entries: refused with a DataError naming the archive, and nothing written; only extra copies of the data set's own folders are harmless."
    d = tmp_path_factory.mktemp('arch')
    entries = [('/'.join(['tiny', *folders, name]), None if size is None else bytes(size)) for folders, name, size in members]
    folders = {'tiny', 'tiny/a', 'tiny/a/0', 'tiny/b'}
    harmless = all(data is None and '/'.join(p for p in name.split('/') if p != '.') in folders for name, data in entries)
    arch = tiny_archive(d/'t.tgz', entries)
    if harmless:
        assert install_archive(arch, d/'root', SMALL) == d/'root'/'tiny'; return
    with pytest.raises(DataError, match=f'{arch}.*refusing to extract|{arch} is not tiny'): install_archive(arch, d/'root', SMALL)
    assert [p.name for p in (d/'root').iterdir()] == ['.mnist37.lock']

@pytest.fixture(scope='module')
def bomb(tmp_path_factory):
    "A small .tgz holding one 256 MiB entry named like a digit (zeros compress to almost nothing)."
    fn = tmp_path_factory.mktemp('bomb')/'mnist_sample.tgz'
    with tarfile.open(fn, 'w:gz', compresslevel=6) as tf:
        info = tarfile.TarInfo('mnist_sample/train/3/0.png'); info.size = 256*2**20
        class Zeros(io.RawIOBase):
            left = info.size
            def readable(self): return True
            def readinto(self, b):
                n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
        tf.addfile(info, io.BufferedReader(Zeros()))
    return fn

def test_a_huge_member_is_refused_before_writing(home, bomb):
    assert bomb.stat().st_size < 2**20
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=f"{bomb}: its entry 'mnist_sample/train/3/0.png' is 268,435,456 bytes, more than the {MAX_PNG:,} allowed"):
        install_archive(bomb)
    assert time.perf_counter() - t0 < 10  # refused at its header, not after reading it
    assert [p.name for p in (home/'data').iterdir()] == ['.mnist37.lock']

@pytest.mark.parametrize('extra,match', [
    (('mnist_sample/train/big.bin', bytes(2**20)), "'mnist_sample/train/big.bin' is not a file of MNIST_SAMPLE"),
    (('mnist_sample/train/3/extra.png', png_bytes(np.zeros((28, 28), np.uint8))), "'mnist_sample/train/3/extra.png' is one PNG more than the 6131 of train/3")])
def test_a_complete_archive_with_extra_members_is_refused(home, tmp_path, extra, match):
    info = tarfile.TarInfo(extra[0]); info.size = len(extra[1])
    arch = make_archive(tmp_path/'plus.tgz', extra=[(info, extra[1])])
    with pytest.raises(DataError, match=match): install_archive(arch)
    assert not (home/'data'/'mnist_sample').exists() and not list((home/'data').glob('.mnist_sample.tmp-*'))

@pytest.mark.parametrize('name,kind,match', [
    ('mnist_sample/train/3', tarfile.REGTYPE, 'is a file where MNIST_SAMPLE has a folder'),
    ('mnist_sample/labels.csv', tarfile.DIRTYPE, 'is a folder where MNIST_SAMPLE has a file'),
    ('mnist_sample/train/3/0.png', tarfile.REGTYPE, 'appears twice'),
    ('mnist_sample/train/3/0.png/x.png', tarfile.REGTYPE, 'is not a file of MNIST_SAMPLE')])
def test_clashing_members_are_refused(home, tmp_path, name, kind, match):
    info = tarfile.TarInfo(name); info.type = kind
    data = b'png' if kind == tarfile.REGTYPE else None
    if data: info.size = len(data)
    arch = make_archive(tmp_path/'clash.tgz', counts=FEW, extra=[(info, data)])
    with pytest.raises(DataError, match=f"{arch}: its entry '{name}' {match}"): install_archive(arch)
    assert not (home/'data'/'mnist_sample').exists()

# ---- §2 images: every error names the file

def png_with_header(w, h, body=None) -> bytes:
    "A grayscale PNG whose header says `w` x `h` (valid checksums), holding `body` rows (by default a 28x28 image)."
    def chunk(kind, data): return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    raw = body if body is not None else b''.join(b'\0' + bytes(28) for _ in range(28))
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')

@pytest.mark.parametrize('data', [png_with_header(100_000, 100_000), png_with_header(28, 28, b'\0' * 5), png_with_header(0, 0)],
                         ids=['header-says-huge', 'header-says-28x28-data-short', 'header-says-0x0'])
def test_an_image_whose_header_lies_is_named(home, tmp_path, data):
    d = tmp_path/'digits'; d.mkdir(); (d/'liar.png').write_bytes(data)
    with pytest.raises(DataError, match='liar.png'): load_digits(d, cache=False)

@HYP
@given(cuts=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=0, max_size=6), cut=st.integers(0, 400),
       size=st.one_of(st.none(), st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))))
def test_property_any_damaged_png_is_named_or_loads(tmp_path_factory, cuts, cut, size):
    "A digit whose header states any size, with random bytes changed and maybe cut short: it loads as a 28x28 digit, or a DataError names the file."
    d = tmp_path_factory.mktemp('png')
    good = bytearray(png_with_header(*size) if size else png_bytes(np.arange(784, dtype=np.uint8).reshape(28, 28)))
    for i, v in cuts: good[i % len(good)] = v
    (d/'hurt.png').write_bytes(bytes(good[:max(cut, 8)] if cut < len(good) else good))
    try: assert load_digits(d, cache=False).shape == (1, 28, 28)
    except DataError as e: assert 'hurt.png' in str(e)

# ---- §3 the tensor cache never brings back old pixels; a broken fastai config is repaired or named

def test_a_png_overwritten_in_place_is_decoded_again(home, tmp_path):
    d = tmp_path/'digits'; d.mkdir()
    for i in range(3): Image.fromarray(np.full((28, 28), 60*i, np.uint8)).save(d/f'{i}.png')
    assert load_digits(d)[1, 0, 0] == 60/255  # now cached
    st0 = (d/'1.png').stat()
    Image.fromarray(np.full((28, 28), 250, np.uint8)).save(d/'1.png')  # same name, same size, new pixels
    assert (d/'1.png').stat().st_size == st0.st_size
    os.utime(d/'1.png', ns=(st0.st_atime_ns, st0.st_mtime_ns + 10**9))  # saved a second later, as an edit would be
    assert load_digits(d)[1, 0, 0] == 250/255
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(noise).save(d/'2.png')
    os.utime(d/'2.png', ns=(st0.st_atime_ns, st0.st_mtime_ns))  # even with its old time put back: its size changed
    assert torch.equal(load_digits(d)[2], torch.from_numpy(noise).float()/255)

def test_a_forged_cache_file_is_not_trusted(home, tmp_path):
    d = tmp_path/'digits'; d.mkdir(); Image.fromarray(np.full((28, 28), 7, np.uint8)).save(d/'0.png')
    first = load_digits(d)
    (cache,) = (home/'data'/'mnist37_cache').glob('*.pt')
    for fake in [{'not': 'a tensor'}, torch.zeros(5, 28, 28, dtype=torch.uint8), torch.zeros(1, 28, 28)]:
        torch.save(fake, cache)
        assert torch.equal(load_digits(d), first)

@pytest.mark.parametrize('text', ['', '\x00' * 64, '[DEFAULT]\ndata = data\narchive = arch', '[DEFAULT]\n'],
                         ids=['empty', 'zero-filled', 'cut-off', 'header-only'])
def test_a_config_left_broken_by_a_killed_first_run_is_repaired(home, text):
    home.mkdir(parents=True); (home/'config.ini').write_text(text)
    assert data_root() == home/'data'
    assert (home/'config.ini').read_text() == '[DEFAULT]\ndata = data\narchive = archive\nstorage = tmp\nmodel = models\n\n'
    assert find_mnist_sample().source == 'fallback'

@pytest.mark.parametrize('text,why', [('this is not an ini file', 'File contains no section headers'),
                                      ('[DEFAULT]\ndata = /my/own/data\n', 'archive, storage, model')])
def test_a_config_broken_otherwise_is_named_and_kept(home, text, why):
    home.mkdir(parents=True); (home/'config.ini').write_text(text)
    with pytest.raises(DataError, match=f"fastai's settings file {home/'config.ini'} is broken .*{why}.*delete it"): find_mnist_sample()
    assert (home/'config.ini').read_text() == text

def test_cli_runs_after_a_killed_first_run(home):
    home.mkdir(parents=True); (home/'config.ini').write_text('')
    code = 'from mnist37.cli import main; main(["data"])'
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=dict(os.environ), cwd=home.parent)
    assert r.returncode == 0 and 'OFFLINE FALLBACK' in r.stdout, r.stderr[-500:]
