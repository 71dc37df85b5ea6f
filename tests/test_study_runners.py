"""Study v2's runners share one plan: a run held by one runner is skipped by the others."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # study_v2.py imports its report module, as when run as a script
    spec = importlib.util.spec_from_file_location("study_v2_under_test", BENCH / "study_v2.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study_v2_under_test"] = module
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RUNS", tmp_path / "runs")
    yield module
    del sys.modules["study_v2_under_test"]


def test_a_held_run_is_refused_to_a_second_runner_until_released(study):
    run, other = study.Run("mrpc", "kd", 3), study.Run("mrpc", "adkd", 3)
    with study.claimed(run) as first:
        assert first is True
        with study.claimed(run) as second:  # a separate open file: what another process would see
            assert second is False
        with study.claimed(other) as different:
            assert different is True
    with study.claimed(run) as again:
        assert again is True


def test_a_claim_is_released_when_the_holder_raises(study):
    run = study.Run("stsb", "adkd_cal", 4)
    with pytest.raises(RuntimeError), study.claimed(run):
        raise RuntimeError("the run failed")
    with study.claimed(run) as again:
        assert again is True


def test_an_accepted_retrained_teacher_keeps_the_studys_own_teacher_record(study, tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(study, "RESULTS", tmp_path / "results")
    run = study.Run("mrpc", "teacher", 2)
    run.result.parent.mkdir(parents=True)
    original = {"task": "mrpc", "final": 85.43, "weights_sha256": "a" * 64}
    run.result.write_text(json.dumps(original))
    run.out.mkdir(parents=True)
    (run.out / "results.json").write_text(json.dumps({"last": {"score": 85.05}}))
    (run.out / "run.json").write_text("{}")
    last = {"score": 85.05}
    results = {"last": last, "best": last, "best_step": 10, "step": 10, "seconds": 1.0}
    monkeypatch.setattr(study.study_runner, "run_command", lambda *args, **kwargs: results)
    monkeypatch.setattr(study, "weights_digest", lambda out: "b" * 64)
    monkeypatch.setattr(study, "v1_teacher_score", lambda task, seed: 85.0)
    monkeypatch.setattr(study, "minilm", lambda: "MINILM")
    monkeypatch.setattr(study, "ACCEPT", {"teacher": True})

    study.execute(run, tmp_path / "glue", log=None)

    assert json.loads(run.result.read_text()) == original  # v2's teacher is still the one its results name
    accepted = json.loads(run.result.with_name("accepted-bbbbbbbbbbbb.json").read_text())
    assert (accepted["weights_sha256"], accepted["final"], accepted["replaces"]) == ("b" * 64, 85.05, "a" * 64)


# ---------------------------------------------------------------- the shared machinery (bench/study_runner.py)
@dataclass(frozen=True)
class FakeRun:
    """What drive() needs of a run: its name, output folder and result file."""

    name: str
    out: Path
    result: Path


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import study_runner

    return study_runner


FAKE_COMMAND = """
import json, pathlib, sys
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
(out / "argv.json").write_text(json.dumps(sys.argv[2:]))
if "--fail" in sys.argv: sys.exit(3)
(out / "results.json").write_text(json.dumps({"resumed": "--resume" in sys.argv}))
"""


def test_run_command_starts_resumes_and_shares_the_cache(runner, tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE_COMMAND)
    log = (tmp_path / "log.txt").open("w")
    fresh = tmp_path / "fresh"
    assert runner.run_command([sys.executable, str(script), str(fresh)], fresh, log, name="t/r/seed1") == {
        "resumed": False
    }
    # killed after a checkpoint: resumed; killed before one: its folder is removed and it starts again
    interrupted, early = tmp_path / "interrupted", tmp_path / "early"
    (interrupted / "checkpoint").mkdir(parents=True)
    (early / "stale.txt").parent.mkdir(parents=True)
    (early / "stale.txt").write_text("x")
    assert runner.run_command([sys.executable, str(script), str(interrupted)], interrupted, log, name="a")["resumed"]
    assert not runner.run_command([sys.executable, str(script), str(early)], early, log, name="b")["resumed"]
    assert not (early / "stale.txt").exists()
    # a run that made a teacher cache publishes it; the next run with the same cache gets a link to it
    shared = tmp_path / "caches" / "maps.pt"
    maker, user = tmp_path / "maker", tmp_path / "user"
    maker.mkdir()
    (maker / "teacher_cache.pt").write_text("maps")
    (maker / "results.json").write_text("{}")
    runner.run_command(["false"], maker, log, name="c", shared_cache=shared)  # finished: nothing runs
    assert shared.read_text() == "maps"
    runner.run_command([sys.executable, str(script), str(user)], user, log, name="d", shared_cache=shared)
    assert (user / "teacher_cache.pt").samefile(shared)
    failing = tmp_path / "failing"
    with pytest.raises(RuntimeError, match="^t/x/seed2 failed with exit code 3"):
        runner.run_command([sys.executable, str(script), str(failing), "--fail"], failing, log, name="t/x/seed2")


def test_a_kept_teacher_cache_spares_a_new_session_the_teacher_pass_and_a_stale_one_is_recomputed(
    runner, student_teacher, checkpoint_dir, tmp_path, monkeypatch
):
    import attribkit as ak
    from attribkit_distill.cache import TeacherCache
    from attribkit_distill.data import encode_examples
    from attribkit_distill.loss import AttributionLoss
    from attribkit_distill.tasks import Example

    student, teacher = student_teacher(2)
    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    texts = ["a fine film", "dull and long", "the cast is superb", "no"]
    data = encode_examples(tokenizer, [Example(t, None, i % 2) for i, t in enumerate(texts)])
    loss_fn = AttributionLoss()
    working, kept = tmp_path / "runs" / "maps.pt", tmp_path / "kept" / "maps.pt"
    first = TeacherCache.build(working, teacher, data, loss_fn)
    other = TeacherCache.build(tmp_path / "other.pt", student, data, loss_fn)
    runner.keep_cache(working, kept)
    assert kept.read_bytes() == working.read_bytes()
    working.unlink()  # a new session: runs/ is empty
    runner.restore_cache(working, kept)
    computed = []
    original = TeacherCache._compute.__func__
    monkeypatch.setattr(
        TeacherCache, "_compute", classmethod(lambda cls, *a, **k: computed.append(1) or original(cls, *a, **k))
    )
    again = TeacherCache.build(working, teacher, data, loss_fn)
    assert computed == [] and torch.equal(again.maps, first.maps)
    # the kept cache of another teacher is a candidate only: recomputed, and the kept copy follows it
    working.unlink()
    runner.restore_cache(working, kept)
    TeacherCache.build(working, student, data, loss_fn)
    assert computed == [1] and not torch.equal(other.maps, first.maps)
    runner.keep_cache(working, kept)
    assert torch.equal(TeacherCache.load(kept, teacher=student, data=data, loss_fn=loss_fn).maps, other.maps)
    runner.restore_cache(working, tmp_path / "kept" / "missing.pt")  # nothing kept: nothing happens
    assert working.is_file()


def test_a_kept_cache_serves_the_same_teacher_retrained_on_another_cpu_and_no_other(
    runner, student_teacher, checkpoint_dir, tmp_path, monkeypatch
):
    import json

    import kept_caches

    import attribkit as ak
    from attribkit_distill.cache import TeacherCache
    from attribkit_distill.cache_key import model_fingerprint
    from attribkit_distill.data import encode_examples
    from attribkit_distill.loss import AttributionLoss
    from attribkit_distill.tasks import Example

    _, first = student_teacher(2)
    retrained = copy.deepcopy(first)  # "another CPU": the same teacher, rounded differently
    with torch.no_grad():
        retrained.classifier.bias.add_(1e-7)
    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    data = encode_examples(tokenizer, [Example(t, None, i % 2) for i, t in enumerate(["a fine film", "dull", "no"])])
    loss_fn = AttributionLoss()
    working, kept = tmp_path / "runs" / "maps.pt", tmp_path / "kept" / "maps.pt"
    computed = TeacherCache.build(working, first, data, loss_fn)
    kept_caches.keep(working, kept, digest="a" * 64, fingerprint=lambda: model_fingerprint(first))
    origin = json.loads(kept_caches.origin_path(kept).read_text())
    assert origin == {"teacher_sha256": "a" * 64, "fingerprint": model_fingerprint(first)}
    working.unlink()  # a new session, on another CPU

    def restore(same: bool):
        return kept_caches.restore(
            working,
            kept,
            digest="b" * 64,
            same_teacher=lambda digest: (same, f"{digest[:4]}: within tolerance" if same else "another seed"),
            fingerprint=lambda: model_fingerprint(retrained),
        )

    assert restore(same=False) is None and not working.exists()  # another teacher: nothing copied
    assert restore(same=True) == {"computed_by": "a" * 64, "reason": "aaaa: within tolerance"}
    calls = []
    original = TeacherCache._compute.__func__
    monkeypatch.setattr(
        TeacherCache, "_compute", classmethod(lambda cls, *a, **k: calls.append(1) or original(cls, *a, **k))
    )
    served = TeacherCache.build(working, retrained, data, loss_fn)
    assert calls == [] and torch.equal(served.maps, computed.maps)  # the kept maps, not recomputed
    kept_caches.keep(working, kept, digest="b" * 64, fingerprint=lambda: model_fingerprint(retrained))
    assert json.loads(kept_caches.origin_path(kept).read_text())["teacher_sha256"] == "a" * 64  # not kept back
    # a cache whose key names another teacher than the one on disk is not kept
    other = tmp_path / "other" / "maps.pt"
    TeacherCache.build(other, first, data, loss_fn)
    kept_caches.keep(other, tmp_path / "kept2" / "maps.pt", digest="b" * 64, fingerprint=lambda: "f" * 64)
    assert not (tmp_path / "kept2").exists()


def test_drive_skips_done_and_held_runs_and_puts_interrupted_ones_first(runner, tmp_path):
    runs = [FakeRun(n, tmp_path / n, tmp_path / f"{n}.json") for n in ("a", "b", "c", "d")]
    runs[0].result.write_text("{}")  # done
    (runs[3].out / "checkpoint").mkdir(parents=True)  # interrupted: first
    executed = []
    lock = lambda run: tmp_path / "locks" / f"{run.name}.lock"  # noqa: E731
    with runner.claimed(lock(runs[2])):  # another runner holds c
        runner.drive(
            runs,
            done=lambda run: run.result.is_file(),
            execute=lambda run: executed.append(run.name) or {"seconds": 1.0},
            lock=lock,
        )
    assert executed == ["d", "b"]


def test_drive_comes_back_to_a_run_that_waited_for_its_teacher(runner, tmp_path):
    runs = [FakeRun(n, tmp_path / n, tmp_path / f"{n}.json") for n in ("a", "b", "c")]
    asked = {"a": 0}

    def ready(run) -> bool:  # a's teacher is being trained by another runner until the second look
        if run.name != "a":
            return True
        asked["a"] += 1
        return asked["a"] > 1

    executed = []

    def execute(run):
        executed.append(run.name)
        run.result.write_text("{}")
        return {"seconds": 1.0}

    lock = lambda run: tmp_path / "locks" / f"{run.name}.lock"  # noqa: E731
    runner.drive(runs, done=lambda run: run.result.is_file(), execute=execute, lock=lock, ready=ready)
    assert executed == ["b", "a", "c"]  # a as soon as it is ready, before c

    looks = []

    def ready_on_third_look(run) -> bool:  # with nothing else to do, drive waits and looks again
        looks.append(run.name)
        return len(looks) > 2

    alone = [FakeRun("x", tmp_path / "x", tmp_path / "x.json")]
    runner.drive(
        alone,
        done=lambda run: run.result.is_file(),
        execute=execute,
        lock=lock,
        ready=ready_on_third_look,
        wait_seconds=0,
    )
    assert executed[-1] == "x" and looks == ["x", "x", "x"]


def test_drive_starts_no_run_expected_to_end_after_the_budget_and_takes_a_shorter_one(runner, tmp_path, capsys):
    runs = [FakeRun(n, tmp_path / n, tmp_path / f"{n}.json") for n in ("long", "unknown", "short", "longer")]
    minutes = {"long": 50.0, "unknown": None, "short": 20.0, "longer": 90.0}
    executed = []

    def execute(run):
        executed.append(run.name)
        run.result.write_text("{}")
        return {"seconds": 1.0}

    runner.drive(
        runs,
        done=lambda run: run.result.is_file(),
        execute=execute,
        lock=lambda run: tmp_path / "locks" / f"{run.name}.lock",
        hours=0.5,
        expected_seconds=lambda run: None if minutes[run.name] is None else minutes[run.name] * 60,
    )
    assert executed == ["unknown", "short"]  # 50 and 90 min do not fit in 30; an unknown length may start
    out = capsys.readouterr().out
    assert out.count("long: expected 50 min, 30 min left; not started") == 1  # said once, not per pass
    assert out.rstrip().endswith("the runs left are expected to end after the time budget; run again to continue")
    executed.clear()
    runner.drive(  # without a budget every run starts, whatever it is expected to take
        runs,
        done=lambda run: run.result.is_file(),
        execute=execute,
        lock=lambda run: tmp_path / "locks" / f"{run.name}.lock",
        expected_seconds=lambda run: 1e9,
    )
    assert executed == ["long", "longer"]


def test_drive_says_nothing_of_a_too_long_run_another_runner_holds(runner, tmp_path, capsys):
    runs = [FakeRun(n, tmp_path / n, tmp_path / f"{n}.json") for n in ("held", "free")]
    lock = lambda run: tmp_path / "locks" / f"{run.name}.lock"  # noqa: E731
    with runner.claimed(lock(runs[0])) as mine:  # "another runner" runs it
        assert mine
        runner.drive(
            runs,
            done=lambda run: run.result.is_file(),
            execute=lambda run: {"seconds": 1.0},
            lock=lock,
            hours=0.5,
            expected_seconds=lambda run: 3600.0,
        )
    out = capsys.readouterr().out
    assert "free: expected 60 min" in out and "held" not in out


def test_drive_prefers_runs_whose_teacher_is_trained_within_a_tier(runner, tmp_path):
    # plan: seed-major over tasks A and B; A's teacher is trained, B's is not; the secondary tier comes last
    names = ["B-primary-1", "A-primary-1", "B-primary-2", "A-primary-2", "A-secondary-1"]
    runs = [FakeRun(n, tmp_path / n, tmp_path / f"{n}.json") for n in names]
    trained = {"A"}
    executed = []

    def ready(run) -> bool:  # trains the run's teacher when it is missing
        trained.add(run.name[0])
        return True

    def execute(run):
        executed.append(run.name)
        run.result.write_text("{}")
        return {"seconds": 1.0}

    runner.drive(
        runs,
        done=lambda run: run.result.is_file(),
        execute=execute,
        lock=lambda run: tmp_path / "locks" / f"{run.name}.lock",
        ready=ready,
        tier=lambda run: 1 if "secondary" in run.name else 0,
        prepared=lambda run: run.name[0] in trained,
    )
    # A's primary runs first (its teacher is there), then B's (one teacher trained), the secondary tier last
    assert executed == ["A-primary-1", "A-primary-2", "B-primary-1", "B-primary-2", "A-secondary-1"]


def test_drive_starts_no_run_of_a_later_tier_while_an_earlier_tier_has_runs_left(runner, tmp_path, capsys):
    # the primary run left is too long for the budget: the secondary runs wait for it, they do not fill the time
    runs = [FakeRun(n, tmp_path / n, tmp_path / f"{n}.json") for n in ("primary-done", "primary-long", "secondary")]
    runs[0].result.write_text("{}")
    executed = []

    def execute(run):
        executed.append(run.name)
        run.result.write_text("{}")
        return {"seconds": 1.0}

    def drive(hours):
        runner.drive(
            runs,
            done=lambda run: run.result.is_file(),
            execute=execute,
            lock=lambda run: tmp_path / "locks" / f"{run.name}.lock",
            hours=hours,
            expected_seconds=lambda run: {"primary-long": 3600.0, "secondary": 60.0}.get(run.name),
            tier=lambda run: 1 if run.name.startswith("secondary") else 0,
        )

    drive(0.5)
    assert executed == []
    assert "primary-long: expected 60 min, 30 min left; not started" in capsys.readouterr().out
    drive(2.0)  # with time for it, the primary run first, then the secondary one
    assert executed == ["primary-long", "secondary"]


def test_drive_does_not_start_a_run_that_preparing_made_too_long(runner, tmp_path, capsys, monkeypatch):
    runs = [FakeRun(n, tmp_path / n, tmp_path / f"{n}.json") for n in ("needs-teacher", "quick")]
    clock = {"now": 1000.0}
    executed = []

    def ready(run) -> bool:  # training the teacher takes 25 of the 30 minutes
        if run.name == "needs-teacher":
            clock["now"] += 25 * 60
        return True

    def execute(run):
        executed.append(run.name)
        run.result.write_text("{}")
        return {"seconds": 1.0}

    monkeypatch.setattr(runner.time, "time", lambda: clock["now"])
    runner.drive(
        runs,
        done=lambda run: run.result.is_file(),
        execute=execute,
        lock=lambda run: tmp_path / "locks" / f"{run.name}.lock",
        hours=0.5,
        ready=ready,
        expected_seconds=lambda run: {"needs-teacher": 20 * 60, "quick": 4 * 60}[run.name],
    )
    assert executed == ["quick"]  # 20 min fitted before the teacher was trained, not after
    assert "needs-teacher: expected 20 min, 5 min left; not started" in capsys.readouterr().out


def test_fill_block_keeps_the_hand_written_text_and_refuses_a_page_without_markers(runner, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- b -->\nold\n<!-- e -->\noutro\n")
    runner.fill_block(page, "<!-- b -->", "<!-- e -->", ["new 1", "new 2"])
    assert page.read_text() == "intro\n<!-- b -->\nnew 1\nnew 2\n<!-- e -->\noutro\n"
    page.write_text("no markers")
    with pytest.raises(SystemExit, match="no <!-- b --> ... <!-- e --> block"):
        runner.fill_block(page, "<!-- b -->", "<!-- e -->", ["x"])
    assert page.read_text() == "no markers"


def test_parse_choices_refuses_an_unknown_name_in_one_line(runner):
    assert runner.parse_choices(None, ("mrpc", "stsb"), "task") == ["mrpc", "stsb"]
    assert runner.parse_choices("stsb, mrpc", ("mrpc", "stsb"), "task") == ["stsb", "mrpc"]
    with pytest.raises(SystemExit, match="^error: unknown task 'qqp'; choose from mrpc, stsb$"):
        runner.parse_choices("mrpc,qqp", ("mrpc", "stsb"), "task")


# ---------------------------------------------------------------- study v3: the rows and the reuse of v2's runs
@pytest.fixture
def v3(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import study_v3

    monkeypatch.setattr(study_v3, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(study_v3, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(study_v3.v2, "RESULTS", tmp_path / "v2")
    monkeypatch.setattr(study_v3, "teacher_out", lambda task: tmp_path / "teacher" / task)
    monkeypatch.setattr(study_v3.v2, "minilm", lambda: "MINILM")
    return study_v3


def _flag(argv, name):
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_v3_plan_runs_the_primary_endpoint_for_every_seed_before_any_secondary_row(v3):
    runs = v3.plan(["mrpc", "stsb"], list(v3.ROWS), [1, 2])
    names = [r.name for r in runs]
    assert len(names) == len(set(names)) == 2 * 2 * 6
    assert names[:6] == [f"{t}/{r}/seed1" for t in ("mrpc", "stsb") for r in ("adkd_shuffled", "kd", "adkd")]
    last_primary = max(i for i, r in enumerate(runs) if r.row in v3.PRIMARY)
    assert last_primary == 11 and runs[12].name == "mrpc/adkd_faithful/seed1"


def test_v3_rows_change_only_the_explanation_signal(v3, tmp_path):
    data = tmp_path / "glue"
    (v3.RESULTS / "mrpc" / "adkd_cosine").mkdir(parents=True)
    (v3.RESULTS / "mrpc" / "adkd_cosine" / "scale.json").write_text('{"beta": 0.4}')
    argv = {row: v3.command(v3.Run("mrpc", row, 3), data) for row in v3.ROWS}
    assert _flag(argv["adkd_shuffled"], "--out") == [str(v3.RUNS / "mrpc" / "adkd_shuffled-seed3")]
    common = [
        a if a != str(v3.RUNS / "mrpc" / "kd-seed3") else "OUT" for a in argv["kd"][: argv["kd"].index("--objective")]
    ]
    for row, a in argv.items():  # v2's student command (its own --out), the row's flags after it
        assert [x if x != str(v3.RUNS / "mrpc" / f"{row}-seed3") else "OUT" for x in a[: len(common)]] == common
    assert _flag(argv["adkd_shuffled"], "--teacher-shuffle") == ["3"]  # each seed its own permutation
    assert _flag(argv["adkd_faithful"], "--teacher-attribution-option") == ["steps=50", "rule=gausslegendre"]
    # MRPC is binary: two class views where the reference has one, so half of its preset beta of 10
    assert _flag(argv["adkd_faithful"], "--beta") == _flag(argv["adkd_attnlrp"], "--beta") == ["5.0"]
    assert _flag(argv["adkd_attnlrp"], "--teacher-attribution-method") == ["attnlrp"]
    assert _flag(argv["adkd_attnlrp"], "--attribution-method") == ["attnlrp"]  # AttnLRP on both sides
    assert _flag(argv["adkd_cosine"], "--attribution-distance") == ["cosine"]
    assert _flag(argv["adkd_cosine"], "--beta") == ["0.4"]
    assert _flag(argv["adkd"], "--beta") == _flag(argv["kd"], "--beta") == []  # the presets
    stsb = v3.command(v3.Run("stsb", "adkd_faithful", 1), data)
    assert _flag(stsb, "--beta") == []  # regression: one view, the preset beta


def test_v3_reuses_v2_runs_only_when_they_learnt_from_the_teacher_on_disk(v3, monkeypatch):
    import json

    record = v3.v2.RESULTS / "mrpc" / "kd" / "seed2.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"teacher_sha256": "abc", "final": 80.0}))
    monkeypatch.setattr(v3, "teacher_digest", lambda task: "abc")
    assert v3.done(v3.Run("mrpc", "kd", 2))
    assert not v3.done(v3.Run("mrpc", "kd", 3))  # v2 has no such run
    assert not v3.done(v3.Run("mrpc", "adkd_shuffled", 2))  # a v3 row is never taken from v2
    monkeypatch.setattr(v3, "teacher_digest", lambda task: "other")  # a retrained teacher that differs
    assert not v3.done(v3.Run("mrpc", "kd", 2))
    monkeypatch.setattr(v3, "teacher_digest", lambda task: None)  # not trained yet
    assert not v3.done(v3.Run("mrpc", "kd", 2))


def test_v3_report_pairs_v3_controls_with_v2_runs_of_the_same_teacher_only(tmp_path, monkeypatch):
    import json

    monkeypatch.syspath_prepend(str(BENCH))
    import study_v3_report as report

    monkeypatch.setattr(report, "RESULTS", tmp_path / "v3")
    monkeypatch.setattr(report, "V2_RESULTS", tmp_path / "v2")

    def write(root, task, row, seed, final, teacher="T"):
        path = root / task / row / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"task": task, "row": row, "seed": seed, "final": final, "teacher_sha256": teacher}))

    # AD-KD beats its shuffled control by 1, 2, 3 points on every task (seeds 1-3); a v2 run of another teacher
    # (seed 4) must not be paired
    for task in report.TASKS:
        for seed, gain in ((1, 1.0), (2, 2.0), (3, 3.0)):
            write(tmp_path / "v3", task, "adkd_shuffled", seed, 80.0)
            write(tmp_path / "v2", task, "adkd", seed, 80.0 + gain)
        write(tmp_path / "v3", task, "adkd_shuffled", 4, 80.0)
        write(tmp_path / "v2", task, "adkd", 4, 99.0, teacher="another")
    table = report.load()
    assert sorted(table[("mrpc", "adkd")]) == [1, 2, 3]
    lines = report.report_lines(table)
    average = next(line for line in lines if line.startswith("| 4-task average | 3 |"))
    # mean 2, sd 1, t(0.975, 2) = 4.3027: half-width 4.3027 / sqrt(3) = 2.484
    assert "| +2.00 | [-0.48, +4.48] |" in average
    assert any("not decided: the rule applies at six seeds" in line for line in lines)
    # a secondary row on one task only: per-task statistics, but no Holm correction of a one-task "family"
    for seed, gain in ((1, -1.0), (2, -2.0), (3, -4.0)):
        write(tmp_path / "v3", "stsb", "adkd_cosine", seed, 80.0 + gain)
    secondary = report.comparison_lines(report.load(), "adkd_cosine", "adkd")
    assert secondary[2].startswith("| STS-B Spearman | 3 | -4.33 |")  # (79, 78, 76) - (81, 82, 83)
    assert secondary[2].endswith("| — |")
    assert secondary[-1] == "Interim: 1 of 4 tasks; Holm's correction waits for all four (—)."
    assert report.comparison_lines(report.load(), "adkd_faithful", "adkd") == [
        "No task has two seeds of both rows yet (AD-KD, 50-step IG teacher maps vs AD-KD (reference))."
    ]
    assert "MRPC `T`; STS-B `T`; CoLA `T`; SST-2 `T`." in next(line for line in lines if line.startswith("Teachers"))
    # a student of the same teacher retrained on another CPU (dev outputs within tolerance) joins the table,
    # and the teachers' line says why; a student of another teacher stops the report
    folder = tmp_path / "v2" / "mrpc" / "teacher"
    folder.mkdir(parents=True)
    for digest, outputs in (("T", [[1.0, 0.0]]), ("U", [[1.0 + 3e-6, 0.0]]), ("V", [[1.0, 0.2]])):
        (folder / f"accepted-{digest}.json").write_text(
            json.dumps({"weights_sha256": digest, "final": 80.0, "dev_outputs": outputs})
        )
    write(tmp_path / "v3", "mrpc", "kd", 1, 70.0, teacher="U")
    lines = report.report_lines(report.load())
    teachers = next(line for line in lines if line.startswith("Teachers"))
    assert "MRPC `T`, the same teacher retrained on another CPU: `U` (max |dev output difference| 3.0e-06" in teachers
    # the teacher most students learnt from is named first, not the first digest in the alphabet
    (folder / "accepted-S.json").write_text(
        json.dumps({"weights_sha256": "S", "final": 80.0, "dev_outputs": [[1.0, 0.0]]})
    )
    write(tmp_path / "v3", "mrpc", "kd", 3, 70.0, teacher="S")
    teachers = next(line for line in report.report_lines(report.load()) if line.startswith("Teachers"))
    assert "MRPC `T`, the same teacher retrained on another CPU: `S` (" in teachers
    write(tmp_path / "v3", "mrpc", "kd", 2, 70.0, teacher="V")
    with pytest.raises(SystemExit, match=r"v3's mrpc students learnt from two teachers \(T, V\): max .* 2.0e-01"):
        report.load()


def test_v3_expects_a_run_to_take_as_long_as_the_longest_landed_seed_of_its_task_and_row(v3):
    import json

    run = v3.Run("cola", "kd", 3)
    assert v3.expected_seconds(run) is None  # nothing landed: unknown
    folder = v3.RESULTS / "cola" / "kd"
    folder.mkdir(parents=True)
    (folder / "seed1.json").write_text(json.dumps({"seconds": 600.0}))
    (folder / "seed2.json").write_text(json.dumps({"seconds": 800.0}))
    assert v3.expected_seconds(run) == pytest.approx(800 * 1.25 + 600)  # training only: allowance for the rest
    (folder / "seed4.json").write_text(json.dumps({"seconds": 700.0, "wall_seconds": 1000.0}))
    assert v3.expected_seconds(run) == 1000.0  # the timed whole, once one is recorded
    (folder / "seed5.json").write_text(json.dumps({"seconds": 1200.0, "wall_seconds": 1100.0, "resumed": True}))
    assert v3.expected_seconds(run) == 1000.0  # a resumed seed's wall time is one session's share: not the whole
    (folder / "seed4.json").unlink()
    assert v3.expected_seconds(run) == pytest.approx(1200 * 1.25 + 600)  # no whole timed: allowance
    (folder / "seed5.json").write_text(json.dumps({"seconds": 1057.0, "wall_seconds": 282.0}))
    assert v3.expected_seconds(run) == pytest.approx(1057 * 1.25 + 600)  # before `resumed`: wall < training
    # a row's first run: twice the longest run of any row of its task (it may build teacher caches), never unknown
    assert v3.expected_seconds(v3.Run("cola", "adkd_faithful", 1)) == 2 * 1057.0
    assert v3.expected_seconds(v3.Run("mrpc", "adkd_faithful", 1)) is None  # nothing of its task landed


def test_v3_does_not_time_a_run_by_the_seed_that_built_its_rows_teacher_cache(v3):
    import json

    folder = v3.RESULTS / "stsb" / "adkd_faithful"
    folder.mkdir(parents=True)
    built = {"seconds": 2432.0, "wall_seconds": 7123.0, "built_teacher_cache": True}  # 50-step IG cache + student
    (folder / "seed1.json").write_text(json.dumps(built))
    run = v3.Run("stsb", "adkd_faithful", 2)
    assert v3.expected_seconds(run) == 7123.0  # no cache anywhere: this run builds it too
    kept = v3.kept_cache(v3.shared_cache(run))
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"cache")
    assert not v3.builds_its_cache(run)
    assert v3.expected_seconds(run) == pytest.approx(2432 * 1.25 + 600)  # the builder's training + allowance
    (folder / "seed2.json").write_text(json.dumps({"seconds": 2500.0, "wall_seconds": 2700.0}))
    assert v3.expected_seconds(run) == 2700.0  # a seed that built nothing times it
    kept.unlink()
    shared = v3.shared_cache(run)
    shared.parent.mkdir(parents=True)
    shared.write_bytes(b"cache")  # the cache in runs/ counts as well
    assert v3.expected_seconds(run) == 2700.0
    # the cosine row learns from the reference row's maps (the distance is not in a cache's key); its first run
    # is timed by twice the task's longest run, the builders left out once there is nothing left to build
    cosine = v3.Run("stsb", "adkd_cosine", 1)
    assert v3.shared_cache(cosine) == v3.shared_cache(v3.Run("stsb", "adkd", 1)) == shared.parent / "maps.pt"
    assert v3.expected_seconds(cosine) == 2 * 7123.0
    (shared.parent / "maps.pt").write_bytes(b"cache")
    assert v3.expected_seconds(cosine) == 2 * 2700.0


def test_v3_times_a_run_by_the_seeds_that_ran_on_the_runners_thread_count(v3, monkeypatch):
    import json

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder = v3.RESULTS / "cola" / "adkd"
    folder.mkdir(parents=True)
    (folder / "seed1.json").write_text(json.dumps({"seconds": 950.0, "wall_seconds": 1010.0, "threads": 1}))
    (folder / "seed2.json").write_text(json.dumps({"seconds": 1085.0, "wall_seconds": 1193.0}))  # before `threads`
    contended = {"seconds": 5067.0, "wall_seconds": 5121.0, "threads": 2}  # two 2-thread runners on 2 cores
    (folder / "seed5.json").write_text(json.dumps(contended))
    assert v3.expected_seconds(v3.Run("cola", "adkd", 6)) == 1193.0
    assert v3.expected_seconds(v3.Run("cola", "adkd_cosine", 1)) == 2 * 1193.0  # a row's first run too
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert v3.expected_seconds(v3.Run("cola", "adkd", 6)) == 5121.0  # a 2-thread runner: its own kind of seed
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert v3.expected_seconds(v3.Run("cola", "adkd", 6)) == 5121.0  # none ran so: every seed counts


def test_v3_refuses_a_student_of_another_teacher_and_takes_the_same_one_retrained_on_another_cpu(v3, monkeypatch):
    import json

    done = v3.RESULTS / "mrpc" / "adkd_shuffled" / "seed1.json"
    done.parent.mkdir(parents=True)
    done.write_text(json.dumps({"teacher_sha256": "a" * 64}))
    folder = v3.v2.RESULTS / "mrpc" / "teacher"
    folder.mkdir(parents=True)
    logits = [[0.8, -0.6], [-1.2, 1.0]]
    records = {
        "a": {"weights_sha256": "a" * 64, "final": 85.0, "dev_outputs": logits},
        "b": {"weights_sha256": "b" * 64, "final": 85.0, "dev_outputs": [[0.8 + 2e-5, -0.6], [-1.2, 1.0]]},
        "c": {"weights_sha256": "c" * 64, "final": 85.0, "dev_outputs": [[0.8, -0.6], [-1.1, 1.0]]},
    }
    for name, record in records.items():
        (folder / f"accepted-{name * 12}.json").write_text(json.dumps(record))
    on_disk = {"teacher": "a"}
    monkeypatch.setattr(v3, "teacher_record", lambda task, data_dir: records[on_disk["teacher"]])
    v3.check_same_teacher("mrpc", Path("GLUE"))  # the same teacher: no objection
    v3.check_same_teacher("stsb", Path("GLUE"))  # no v3 student yet
    on_disk["teacher"] = "b"  # retrained on another CPU: outputs within 2e-5
    v3.check_same_teacher("mrpc", Path("GLUE"))
    on_disk["teacher"] = "c"  # another teacher: one dev logit 0.1 away
    with pytest.raises(SystemExit, match=r"the mrpc teacher on disk .cccccccccccc. is not the one .* 1.0e-01 > 0.001"):
        v3.check_same_teacher("mrpc", Path("GLUE"))
    (folder / "accepted-aaaaaaaaaaaa.json").unlink()
    with pytest.raises(
        SystemExit, match="learnt from teacher aaaaaaaaaaaa .adkd_shuffled/seed1.json., which has no record"
    ):
        v3.check_same_teacher("mrpc", Path("GLUE"))


MAKES_A_CACHE = """
import json, pathlib, sys, time
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
(out / "argv.json").write_text(json.dumps(sys.argv[2:]))
progress = out / "teacher_cache.pt.progress"
(out / "continued.txt").write_text(progress.read_text() if progress.is_file() else "")
time.sleep(0.5)
progress.unlink(missing_ok=True)
(out / "teacher_cache.pt").write_text("maps")
(out / "results.json").write_text("{}")
"""


def test_run_command_continues_a_kept_cache_build_and_calls_its_keeper_while_it_runs(runner, tmp_path):
    script = tmp_path / "makes.py"
    script.write_text(MAKES_A_CACHE)
    shared = tmp_path / "caches" / "maps.pt"
    runner.progress_of(shared).parent.mkdir(parents=True)
    runner.progress_of(shared).write_text("half of the maps")  # kept by an earlier session
    out, calls = tmp_path / "run", []
    log = (tmp_path / "log.txt").open("w")
    runner.run_command(
        [sys.executable, str(script), str(out)],
        out,
        log,
        name="t",
        shared_cache=shared,
        while_running=lambda: calls.append(1),
        every=0.05,
    )
    assert (out / "continued.txt").read_text() == "half of the maps"  # the command found the progress
    assert json.loads((out / "argv.json").read_text()) == ["--resume"]  # and was told to continue
    assert len(calls) >= 3  # while it ran (0.5 s at every 0.05 s), and once when it ended
    assert shared.read_text() == "maps" and not runner.progress_of(shared).exists()  # built: the progress goes
    # a folder holding only a build's progress is resumed, not removed as a start that died early
    again = tmp_path / "again"
    again.mkdir()
    (again / "teacher_cache.pt.progress").write_text("a third")
    runner.run_command([sys.executable, str(script), str(again)], again, log, name="u")
    assert (again / "continued.txt").read_text() == "a third"


def test_v3_a_cache_build_continues_in_the_next_session_on_another_cpu_and_names_both_teachers(
    v3, student_teacher, checkpoint_dir, tmp_path, monkeypatch
):
    import shutil

    import attribkit as ak
    from attribkit_distill.cache import TeacherCache
    from attribkit_distill.cache_key import model_fingerprint
    from attribkit_distill.data import encode_examples
    from attribkit_distill.loss import AttributionLoss
    from attribkit_distill.tasks import Example

    _, first = student_teacher(2)
    retrained = copy.deepcopy(first)  # the same teacher retrained on a CPU that rounds differently
    with torch.no_grad():
        retrained.classifier.bias.add_(1e-7)
    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    texts = ["a fine film", "dull and long", "the cast is superb", "no", "why", "a film about films"]
    data = encode_examples(tokenizer, [Example(t, None, i % 2) for i, t in enumerate(texts)])
    loss_fn = AttributionLoss()
    teachers = {"a" * 64: first, "b" * 64: retrained}
    on_disk = {"digest": "a" * 64}
    monkeypatch.setattr(v3, "teacher_digest", lambda task: on_disk["digest"])
    monkeypatch.setattr(v3, "_fingerprint", lambda task, digest: model_fingerprint(teachers[digest]))
    monkeypatch.setattr(v3, "teacher_record", lambda task, data_dir: {})
    monkeypatch.setattr(v3.teacher_identity, "load_record", lambda folder, digest: {"weights_sha256": digest})
    monkeypatch.setattr(v3.teacher_identity, "compare", lambda recorded, current: (True, "within tolerance"))
    shared = v3.RUNS / "mrpc" / "caches" / "maps-faithful.pt"
    out = v3.RUNS / "mrpc" / "adkd_faithful-seed1"
    calls, stop_at = [], {"call": 2}  # the session ends during the second of three batches
    original = AttributionLoss.teacher_maps

    def counted(loss, teacher, batch):
        calls.append(1)
        if len(calls) == stop_at["call"]:
            raise KeyboardInterrupt
        return original(loss, teacher, batch)

    monkeypatch.setattr(AttributionLoss, "teacher_maps", counted)
    with pytest.raises(KeyboardInterrupt):
        TeacherCache.build(out / "teacher_cache.pt", first, data, loss_fn, batch_size=2)
    v3.keep_build_progress("mrpc", out, shared, [])
    kept = v3.RESULTS / "caches" / "mrpc" / "maps-faithful.pt.progress"
    assert kept.is_file()
    shutil.rmtree(v3.RUNS)  # the next session: runs/ is empty, and the teacher is retrained on another CPU
    on_disk["digest"] = "b" * 64
    assert v3.restore_kept_progress("mrpc", shared, Path("GLUE")) == ["a" * 64]
    runner_module = sys.modules["study_runner"]
    out.mkdir(parents=True)
    shutil.copy(runner_module.progress_of(shared), out / "teacher_cache.pt.progress")  # as run_command does
    calls.clear()
    stop_at["call"] = 0
    built = TeacherCache.build(out / "teacher_cache.pt", retrained, data, loss_fn, batch_size=2)
    assert len(calls) == 2  # the two batches the first session left
    alone = TeacherCache.build(tmp_path / "first.pt", first, data, loss_fn, batch_size=2, checkpoint_seconds=None)
    longest = torch.argsort(built.lengths, descending=True, stable=True)[:2]  # the batch the first teacher computed
    for i in range(len(texts)):  # the first session's batch is the first teacher's; the rest the retrained one's
        assert torch.equal(built.logits[i], alone.logits[i]) == (i in longest.tolist())
    shutil.copy(out / "teacher_cache.pt", shared)  # published, as run_command does
    v3.keep_computed_cache("mrpc", shared, ["a" * 64])
    origin = json.loads((v3.RESULTS / "caches" / "mrpc" / "maps-faithful.teacher.json").read_text())
    assert origin["teacher_sha256"] == "b" * 64 and origin["parts_computed_by"] == ["a" * 64]
    assert v3.parts_computed_elsewhere(shared) == ["a" * 64]


def test_v3_runs_that_need_a_cache_another_runner_is_building_wait_for_it(v3):
    faithful = v3.Run("mrpc", "adkd_faithful", 2)
    lock = v3.cache_build_lock(v3.shared_cache(faithful))
    assert lock == v3.RUNS / "locks" / "mrpc-maps-faithful.build.lock"
    assert not v3.waits_for_a_cache(faithful)  # nobody builds it: this run may
    with v3.study_runner.exclusive(lock):  # "another runner" builds the MRPC faithful cache
        assert v3.waits_for_a_cache(faithful)
        assert not v3.waits_for_a_cache(v3.Run("stsb", "adkd_faithful", 2))  # another task's cache
        assert not v3.waits_for_a_cache(v3.Run("mrpc", "adkd_cosine", 2))  # another cache of the task
        v3.shared_cache(faithful).parent.mkdir(parents=True)
        v3.shared_cache(faithful).write_text("built")  # a cache that exists is used, whoever holds the lock
        assert not v3.waits_for_a_cache(faithful)
    assert not v3.study_runner.held_elsewhere(lock)


# ---------------------------------------------------------------- study v3: students from the kept caches alone
def _kept_caches(v3, teacher, data, digest: str, task: str = "sst2") -> None:
    """The task's kept caches (training and dev), computed by ``teacher`` and named after ``digest``."""
    from attribkit_distill.cache import TeacherCache
    from attribkit_distill.loss import AttributionLoss

    folder = v3.RESULTS / "caches" / task
    losses = {
        "logits": None,
        "maps": AttributionLoss(),
        "dev-faithful": AttributionLoss(teacher_options={"steps": 50, "rule": "gausslegendre"}),
        "dev-reference": AttributionLoss(),
    }
    for name, loss_fn in losses.items():
        TeacherCache.build(folder / f"{name}.pt", teacher, data, loss_fn)
        (folder / f"{name}.teacher.json").write_text(json.dumps({"teacher_sha256": digest}))


def test_v3_a_run_learns_from_the_kept_caches_alone_when_the_teacher_is_not_on_disk(
    v3, student_teacher, checkpoint_dir, tmp_path, monkeypatch
):
    import attribkit as ak
    from attribkit_distill.data import encode_examples
    from attribkit_distill.tasks import Example

    _, teacher = student_teacher(2)
    tokenizer = ak.load_classifier(checkpoint_dir("bert", 2), device="cpu").tokenizer
    data = encode_examples(tokenizer, [Example(t, None, i % 2) for i, t in enumerate(["a fine film", "dull", "no"])])
    _kept_caches(v3, teacher, data, "a" * 64)
    monkeypatch.setattr(v3, "teacher_digest", lambda task: None)
    kd, shuffled, faithful = (v3.Run("sst2", row, 4) for row in ("kd", "adkd_shuffled", "adkd_faithful"))
    both_dev = {"dev-faithful": "a" * 64, "dev-reference": "a" * 64}
    assert v3.cache_only_sources(kd) == {"logits": "a" * 64, **both_dev}
    assert v3.cache_only_sources(shuffled) == {"maps": "a" * 64, **both_dev}  # the reference maps, shuffled on reading
    assert v3.cache_only_sources(faithful) is None and not v3.teacher_free(faithful)  # no kept 50-step training maps
    assert v3.teacher_free(kd) and v3.teacher_free(shuffled)
    argv = v3.command(shuffled, tmp_path / "glue", v3.kept_cache(v3.training_cache(shuffled)))
    assert _flag(argv, "--teacher-cache") == [str(v3.RESULTS / "caches" / "sst2" / "maps.pt")]
    assert "--teacher" not in argv and _flag(argv, "--teacher-shuffle") == ["4"]
    monkeypatch.setattr(v3, "teacher_digest", lambda task: "a" * 64)  # trained in this session: used
    assert not v3.teacher_free(kd)
    monkeypatch.setattr(v3, "teacher_digest", lambda task: None)
    reference = v3.RESULTS / "caches" / "sst2" / "dev-reference.pt"
    blob = torch.load(reference, weights_only=True)
    config = json.loads(blob.pop("teacher_config"))
    torch.save(blob, reference)  # kept before caches recorded their teacher's config
    assert v3.cache_only_sources(kd) is None and not v3.teacher_free(kd)
    monkeypatch.setattr(v3, "teacher_out", lambda task: checkpoint_dir("bert", 2))
    v3.add_teacher_configs("sst2")  # a session with the teacher on disk adds it
    assert v3.cache_only_sources(kd) == {"logits": "a" * 64, **both_dev}
    assert json.loads(torch.load(reference, weights_only=True)["teacher_config"]) == config


def test_v3_refuses_kept_caches_of_another_teacher(v3, monkeypatch):
    done = v3.RESULTS / "sst2" / "kd" / "seed1.json"
    done.parent.mkdir(parents=True)
    done.write_text(json.dumps({"teacher_sha256": "a" * 64}))
    folder = v3.v2.RESULTS / "sst2" / "teacher"
    folder.mkdir(parents=True)
    records = {
        "a": {"weights_sha256": "a" * 64, "final": 90.0, "dev_outputs": [[0.8, -0.6]]},
        "b": {"weights_sha256": "b" * 64, "final": 90.0, "dev_outputs": [[0.8 + 1e-5, -0.6]]},
        "c": {"weights_sha256": "c" * 64, "final": 90.0, "dev_outputs": [[0.5, -0.6]]},
    }
    for name, record in records.items():
        (folder / f"accepted-{name * 12}.json").write_text(json.dumps(record))
    v3.check_cache_teachers("sst2", {"maps": "a" * 64, "dev-faithful": "b" * 64})  # the same teacher, retrained
    with pytest.raises(SystemExit, match=r"the sst2 teacher of the kept caches .cccccccccccc. is not the one"):
        v3.check_cache_teachers("sst2", {"maps": "c" * 64})
    with pytest.raises(SystemExit, match="computed by teacher dddddddddddd, which has no record"):
        v3.check_cache_teachers("sst2", {"maps": "d" * 64})


def test_v3_the_gaps_from_the_kept_dev_caches_are_the_gaps_measured_with_the_teacher(
    v3, student_teacher, checkpoint_dir, tmp_path, monkeypatch
):
    import shutil

    from tiny_glue import write_tiny_glue

    glue = write_tiny_glue(tmp_path / "glue")
    monkeypatch.setattr(v3, "teacher_out", lambda task: checkpoint_dir("bert", 2))
    run = v3.Run("sst2", "adkd", 1)
    shutil.copytree(checkpoint_dir("bert", 2, seed=1, layers=1), run.out)  # the student
    with_teacher = v3.faithful_gap(run, glue)
    for name in ("dev-faithful", "dev-reference"):
        (v3.RESULTS / "caches" / "sst2").mkdir(parents=True, exist_ok=True)
        shutil.copy(v3.RUNS / "sst2" / "caches" / f"{name}.pt", v3.RESULTS / "caches" / "sst2" / f"{name}.pt")
    monkeypatch.setattr(v3, "teacher_out", lambda task: tmp_path / "no-teacher")
    without = v3.faithful_gap(run, glue, teacher_loaded=False)
    assert without == with_teacher and with_teacher["faithful"] > 0.01 and with_teacher["reference"] > 0.01
    assert with_teacher["faithful"] != with_teacher["reference"]


def test_a_runner_uses_one_thread_unless_told_otherwise(runner, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        assert runner.one_thread_per_runner() == 1 and torch.get_num_threads() == 1
        assert runner.threads() == 1  # what the result JSONs record
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert runner.one_thread_per_runner() == 2 and torch.get_num_threads() == 2  # an explicit count is kept
    finally:
        torch.set_num_threads(before)


def test_v3_cosine_scale_reads_minilms_tokenizer_when_the_teacher_is_not_on_disk(
    v3, checkpoint_dir, tmp_path, monkeypatch
):
    """Regression: with the teacher absent, the scale loaded MiniLM as a classifier, which it is not."""
    import shutil

    from transformers import AutoTokenizer

    encoder = tmp_path / "minilm"
    shutil.copytree(checkpoint_dir("bert", 2), encoder)
    config = json.loads((encoder / "config.json").read_text())
    (encoder / "config.json").write_text(json.dumps({**config, "architectures": ["BertModel"]}))
    monkeypatch.setattr(v3.v2, "minilm", lambda: str(encoder))
    monkeypatch.setattr(v3, "teacher_digest", lambda task: None)
    sentences = ["the cat sat .", "dogs bark loudly at night", "no"]
    (tmp_path / "glue" / "CoLA").mkdir(parents=True)
    for split in ("train", "dev"):
        rows = "".join(f"gj04\t{i % 2}\t\t{s}\n" for i, s in enumerate(sentences))
        (tmp_path / "glue" / "CoLA" / f"{split}.tsv").write_text(rows)
    scale = v3.mean_tokens("cola", tmp_path / "glue")
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    expected = sum(len(tokenizer(s)["input_ids"]) for s in sentences) / 3  # [CLS] ... [SEP] counted
    assert scale["examples"] == 3
    assert scale["mean_tokens"] == pytest.approx(expected, abs=1e-12)
    assert scale["beta"] == pytest.approx(1.0 * 2 / expected, rel=1e-12)  # CoLA's preset beta is 1
    assert json.loads((v3.RESULTS / "cola" / "adkd_cosine" / "scale.json").read_text()) == scale  # recorded
