"""The benchmark's structure, not its timings: contenders timed in turns (a, b, b, a, ...) by this process's CPU time with
the garbage collector paused, every ratio the median of the rounds' ratios with its spread, the training contenders on
the same model and the same batches, one CPU thread unless OMP_NUM_THREADS says otherwise, named in the header."""
import gc, time, pytest, torch
import mnist37.bench as bench_mod
from mnist37.bench import ROWS, bench, interleave, ratio, training_runs

def test_interleave_takes_turns_and_keeps_each_result():
    calls, n = [], iter(range(100))
    fns = {'a': lambda: calls.append('a') or next(n), 'b': lambda: calls.append('b') or next(n)}
    times, results = interleave(fns, reps=4)
    assert ''.join(calls) == 'ab' + 'abba'*2  # a warm-up round, then four rounds in turns, reversed every other
    assert [len(t) for t in times.values()] == [4, 4] and all(t >= 0 for ts in times.values() for t in ts)
    assert results == {'a': 9, 'b': 8}  # the last round's results (b went first in it)
    calls.clear(); interleave(fns, reps=3, warmup=False); assert ''.join(calls) == 'abbaab'

def test_interleave_counts_cpu_time_so_waiting_for_the_processor_does_not_count():
    "A turn that waits (as our process waits while another program has the processor) costs no CPU time."
    nap = {'nap': lambda: time.sleep(0.05)}
    assert max(interleave(nap, reps=2, warmup=False)[0]['nap']) < 0.02
    assert min(interleave(nap, reps=2, warmup=False, clock=time.perf_counter)[0]['nap']) >= 0.05
    work = {'work': lambda: sum(range(300_000))}  # real work is counted by either clock
    assert min(interleave(work, reps=2)[0]['work']) > 0

def test_interleave_pauses_the_garbage_collector_inside_each_turn_only():
    seen = []
    interleave({'a': lambda: seen.append(gc.isenabled()), 'b': lambda: seen.append(gc.isenabled())}, reps=2)
    assert seen == [True, True, False, False, False, False] and gc.isenabled()  # warm-up round untimed, collector on
    with pytest.raises(ZeroDivisionError): interleave({'boom': lambda: 1/0}, reps=1, warmup=False)
    assert gc.isenabled()  # given back when a contender fails

def test_ratio_is_the_median_of_the_rounds_ratios_with_its_spread():
    r = ratio([2., 9., 4., 1.], [1., 3., 1., 1.])  # per round: 2, 3, 4, 1
    assert r == dict(first=3., second=1., ratio=2.5, low=1., high=4., rounds=4)
    # not the ratio of the medians: a slow round on both sides cancels out
    assert ratio([1., 100.], [1., 100.])['ratio'] == 1 and ratio([1., 100.], [1., 100.])['high'] == 1
    with pytest.raises(ValueError): ratio([1., 2.], [1.])

@pytest.fixture(scope='module')
def fallback(tmp_path_factory):
    "The offline fallback data, built once for this file (building it takes most of a test-sized run)."
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('FASTAI_HOME', str(tmp_path_factory.mktemp('fastai_home'))); mp.setenv('MNIST37_OFFLINE', '1')
        mp.delenv('MNIST37_ARCHIVE', raising=False)
        from mnist37.data import mnist_sample
        yield mnist_sample()

def test_the_training_contenders_run_the_same_model_on_the_same_batches(fallback, monkeypatch):
    "The Learner with the book's loss, with the checked loss and the fast path differ only in what the rows compare."
    from mnist37.linear import lesson_xy
    learners, real = [], bench_mod.fastai_learner
    monkeypatch.setattr(bench_mod, 'fastai_learner', lambda *a, **k: learners.append(real(*a, **k)) or learners[-1])
    x, y, vx, vy = lesson_xy(fallback)
    runs = training_runs(x, y, vx, vy, epochs=2)
    accs = {k: run() for k, run in runs.items()}
    book, checked = learners
    assert book.loss_func is not checked.loss_func                      # what the third row compares...
    assert repr(book.model) == repr(checked.model) and len(book.dls.train) == len(checked.dls.train)
    n_batches = 2*-(-len(x)//256)                                       # ...and nothing else: the same net,
    assert len(book.recorder.losses) == len(checked.recorder.losses) == n_batches  # as many batches per run,
    assert accs['book'] == pytest.approx(accs['fit'], abs=1e-3) and accs['checked'] == pytest.approx(accs['fit'], abs=1e-3)
    assert [run() for run in runs.values()] == list(accs.values())     # each run starts again from the same weights

@pytest.fixture
def small_run(fallback, monkeypatch, tmp_path):
    "A test-sized bench on the offline fallback (seconds), with every interleave call, its thread count and clock."
    seen, real = [], bench_mod.interleave
    def spy(fns, reps=7, warmup=True, clock=time.process_time):
        seen.append((list(fns), torch.get_num_threads(), clock)); return real(fns, reps, warmup, clock)
    monkeypatch.setattr(bench_mod, 'interleave', spy)
    before = torch.get_num_threads()
    yield lambda: (bench(fallback, epochs=1, reps=2, device=torch.device('cpu'), out=tmp_path/'b'), seen, tmp_path/'b')
    torch.set_num_threads(before)

def test_bench_times_in_turns_with_one_thread_and_reports_median_and_spread(small_run, monkeypatch):
    torch.set_num_threads(2); monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    res, seen, out = small_run()
    assert res['threads'] == 1 and all(n == 1 for _, n, _ in seen)  # one thread while timing...
    assert torch.get_num_threads() == 2                              # ...and the caller's count given back
    assert all(clock is time.process_time for _, _, clock in seen)   # CPU time on the CPU, in every set of turns
    head = res['table'].splitlines()[0]
    assert '1 CPU thread (the default' in head and "this process's CPU time" in head and 0 < res['share'] <= 1.5
    # the three training paths, the products and the floor's product share rounds; the loading pair has its own
    assert [keys for keys, _, _ in seen] == [['book', 'checked', 'fit', 'products', 'big'], ['decode', 'cache']]
    assert [r['name'] for r in res['rows']] == [name for name, _, _ in ROWS]
    for r in res['rows']:
        assert r['rounds'] == 2 and r['low'] <= r['ratio'] <= r['high'] and r['first'] > 0 and r['second'] > 0
    assert all(len(t) == 2 for t in res['times'].values())
    lines = res['table'].splitlines()
    assert 'median' in lines[2] and 'spread' in lines[2] and lines[3] == '|---'*5 + '|' and len(lines) == 4 + len(ROWS)
    assert all(line.count('x') >= 2 and '-' in line.split('|')[5] for line in lines[4:])
    assert res['acc']['fit'] == pytest.approx(res['acc']['checked'], abs=1e-3)  # same start, same batches
    assert (out/'bench.md').read_text() == res['table'] + '\n' and (out/'bench.png').read_bytes()[:4] == b'\x89PNG'

def test_bench_uses_the_threads_omp_num_threads_asks_for(small_run, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    res, seen, _ = small_run()
    assert res['threads'] == 2 and all(n == 2 for _, n, _ in seen) and '2 CPU threads (OMP_NUM_THREADS)' in res['table']
