"""The study script's plan and command lines stay valid as the CLI evolves (nothing is trained here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attribkit.cli import _load_plugins, app

BENCH = Path(__file__).resolve().parents[1] / "bench"
_load_plugins()


@pytest.fixture(scope="module")
def reproduce():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("reproduce", BENCH / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    module.DATA["glue"] = Path(__file__).parent / "data" / "glue"  # the GLUE-layout fixture (--data-dir)
    yield module
    sys.path.remove(str(BENCH))
    del sys.modules["reproduce"]


@pytest.fixture(scope="module")
def study_v2():
    sys.path.insert(0, str(BENCH))  # study_v2.py imports its report module, as when run as a script
    spec = importlib.util.spec_from_file_location("study_v2", BENCH / "study_v2.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study_v2"] = module
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCH))
    del sys.modules["study_v2"]


@pytest.fixture(scope="module")
def report(reproduce):
    """``bench/reproduce_report.py`` (it imports the study module, loaded by the fixture above)."""
    sys.path.insert(0, str(BENCH))
    try:
        import reproduce_report
    finally:
        sys.path.remove(str(BENCH))
    return reproduce_report


def flags_of(command: str) -> set[str]:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    return {word.strip(",") for word in result.output.replace("/", " ").split() if word.startswith("--")}


def test_plan_order_and_size(reproduce):
    runs = reproduce.plan(list(reproduce.TASKS), list(reproduce.PRIORITY))
    assert len(runs) == len({(r.task, r.row.name, r.seed) for r in runs}) == 110
    # task by task: the teacher, then the core rows of seed 1 (students need their task's teacher)
    assert [(r.task, r.row.name) for r in runs[:5]] == [
        ("rte", "teacher"),
        ("rte", "student_ft"),
        ("rte", "kd"),
        ("rte", "adkd"),
        ("mrpc", "teacher"),
    ]
    first_seed2 = next(i for i, r in enumerate(runs) if r.seed == 2)
    assert all(r.seed == 1 for r in runs[:first_seed2])  # a whole seed before the next
    # the table comes before the extra rows within seed 1
    names = [r.row.name for r in runs[:first_seed2]]
    assert max(names.index(n) for n in ("adkd_no_ce", "adkd_no_kd", "adkd_ig4", "adkd_k288")) < names.index("kd_iit")
    assert {r.task for r in runs if r.row.name == "adkd_no_ce"} == {"rte", "mrpc", "stsb"}
    assert {r.task for r in runs if r.row.name == "adkd_ig4"} == {"mrpc"}
    assert {(r.task, r.row.name) for r in runs if r.row.name.startswith("adkd_k")} == {
        ("stsb", f"adkd_k{k}") for k in reproduce.TOP_K_SWEEP
    }
    assert {r.task for r in runs if r.row in reproduce.INVESTIGATION} == {"mrpc"}
    # three seeds for the rows, seed 1 for the extra rows (IIT, investigation)
    seeds = {}
    for r in runs:
        seeds.setdefault(r.row.name, set()).add(r.seed)
    assert seeds["adkd_k48"] == seeds["teacher"] == seeds["adkd_ig4"] == {1, 2, 3}
    assert seeds["kd_iit"] == seeds["adkd_topk96"] == seeds["adkd_beta1"] == {1}


def test_explicit_seeds_run_every_row_at_those_seeds(reproduce):
    runs = reproduce.plan(["mrpc"], ["kd", "kd_iit", "adkd_t1"], [2, 3])
    assert [(r.row.name, r.seed) for r in runs] == [
        ("kd", 2),
        ("kd_iit", 2),
        ("adkd_t1", 2),
        ("kd", 3),
        ("kd_iit", 3),
        ("adkd_t1", 3),
    ]


def test_every_command_line_uses_existing_flags(reproduce):
    known = {"finetune": flags_of("finetune"), "distill": flags_of("distill")}
    for row in reproduce.ROWS:
        run = reproduce.Run("stsb", row, 2)
        argv = reproduce.command(run)
        used = {a for a in argv if a.startswith("--")}
        assert used <= known[row.command], (row.name, used - known[row.command])
        assert argv[argv.index("--seed") + 1] == "2"
        assert argv.count("--lr") == 1  # a row's own learning rate replaces the study's
    lr_row = next(r for r in reproduce.ROWS if r.name == "adkd_lr3e-5")
    argv = reproduce.command(reproduce.Run("mrpc", lr_row, 1))
    assert argv[argv.index("--lr") + 1] == "3e-05"


def test_report_cells_and_cost_ratios(report):
    assert report.cell([]) == "—" and report.cell([55.55]) == "55.5 (1)"  # one seed: no error bar
    assert report.cell([1.0, 2.0, 3.0]) == "2.0 ± 1.0 (3)"  # sample std (n - 1)
    results = {
        ("mrpc", "kd"): [{"steps_per_second": 1.0, "threads": 1}, {"steps_per_second": 0.5, "threads": 2}],
        ("mrpc", "adkd"): [{"steps_per_second": 0.25, "threads": 1}],
        ("mrpc", "kd_iit"): [{"steps_per_second": 0.2}],
    }  # no field: an older run on both cores
    lines = report.cost_table(results)
    assert "| MRPC | 1 | adkd | 4.00 | 4.00 |" in lines  # 4 s/step vs KD's 1 s at the same setting
    assert "| MRPC | 2 | kd_iit | 5.00 | 2.50 |" in lines  # vs KD's 2 s on 2 threads, never across settings


def test_investigation_rows_pair_with_the_right_baseline_seed_by_seed(reproduce, report):
    f1 = lambda **v: [{"seed": int(s[1:]), "best": {"dev/f1": x}} for s, x in v.items()]  # noqa: E731
    results = {
        ("mrpc", "kd"): f1(s1=82.0, s2=84.0),
        ("mrpc", "adkd"): f1(s1=84.0, s2=83.0),
        ("mrpc", "adkd_beta100"): f1(s1=80.0),
        ("mrpc", "adkd_beta1"): f1(s3=90.0),
        ("mrpc", "kd_t1"): f1(s1=70.0),
        ("mrpc", "adkd_t1"): f1(s1=71.5),
    }
    lines = report.investigation_table(results)
    # presets: +2 and -1 -> mean 0.5, sample std 2.1
    assert (
        "| presets (beta 10, all 384 dims, T 4 annealed, lr 1e-4) | 83.0 ± 1.4 (2) | 83.5 ± 0.7 (2) | +0.5 ± 2.1, ahead on 1/2 |"
        in lines
    )
    # seed 1 against KD's seed 1 (82), not against KD's mean over seeds (83)
    assert "| beta = 100 | 82.0 (1), presets | 80.0 (1) | -2.0 (1) |" in lines
    assert "| T = 1 | 70.0 (1) | 71.5 (1) | +1.5 (1) |" in lines  # its own KD row
    assert "| beta = 1 | — | 90.0 (1) | — |" in lines  # no KD run of seed 3 to pair with
    assert any(line.startswith("| K = 96") and line.endswith("| — | — | — |") for line in lines)
    names = {r.name for r in reproduce.ROWS}
    assert {row for _, kd, adkd in report.INVESTIGATION_TABLE for row in (kd, adkd) if row} <= names


def test_paired_differences_match_seed_by_seed(report):
    runs = lambda row, **by_seed: [{"seed": int(s[1:]), "best": {"dev/f1": v}} for s, v in by_seed.items()]  # noqa: E731
    results = {
        ("mrpc", "kd"): runs("kd", s1=80.0, s2=82.0, s3=84.0),
        ("mrpc", "adkd"): runs("adkd", s1=81.0, s2=81.0, s4=90.0),  # seed 4 has no KD partner
        ("mrpc", "student_ft"): runs("student_ft", s2=83.0),
    }
    # seeds 1 and 2: +1 and -1 -> mean 0, sample std sqrt(2) = 1.41; AD-KD ahead on seed 1 only
    assert report.paired_cell(results, "mrpc", "adkd", "kd") == "+0.0 ± 1.4, ahead on 1/2"
    assert report.paired_cell(results, "mrpc", "kd", "student_ft") == "-1.0 (1)"
    assert report.paired_cell(results, "rte", "adkd", "kd") == "—"
    assert report.signed(-0.04) == "+0.0" and report.signed(-0.06) == "-0.1"
    lines = report.paired_table(results)
    assert lines[2].startswith("| AD-KD − KD | — |") and "+0.0 ± 1.4, ahead on 1/2" in lines[2]
    # every ablation is set against the row it removes something from
    assert [line.split(" | ")[0] for line in lines[5:]] == [
        "| AD-KD w/o CE − AD-KD",
        "| AD-KD w/o KD − AD-KD",
        "| AD-KD w/o KD − no teacher",
        "| 4 IG steps − 1 IG step",
    ]
    results[("mrpc", "adkd_no_kd")] = runs("adkd_no_kd", s2=82.5)
    assert report.paired_cell(results, "mrpc", "adkd_no_kd", "student_ft") == "-0.5 (1)"  # 82.5 - 83.0, seed 2


def test_top_k_sweep_places_the_preset_at_its_recorded_k(report):
    def run(k, seed, value, metric="dev/spearman"):
        return {"settings": {"loss": {"attribution": {"top_k": k}}}, "seed": seed, "best": {metric: value}}

    results = {
        ("stsb", "adkd_k48"): [run(48, 1, 80.0), run(48, 2, 82.0)],
        ("stsb", "adkd"): [run(320, 1, 82.0), run(320, 2, 84.0), run(320, 3, 90.0)],
        ("stsb", "adkd_k96"): [run(96, 1, 81.0), run(96, 2, 81.0)],
        ("mrpc", "adkd"): [run(None, 1, 70.0, "dev/f1")],
    }
    points = report.sweep_points(results)
    # not at 384: STS-B's preset is 320; seed 3 (the preset's only) left out so every point averages seeds 1-2
    assert [(k, m) for k, m, _ in points] == [(48, 81.0), (96, 81.0), (320, 83.0)]
    assert points[2][2] == pytest.approx(2**0.5) and points[1][2] == 0.0
    assert report.sweep_points(results, "mrpc") == [(384, 70.0, 0.0)]  # no top_k recorded: every dimension


def test_case_study_covers_every_ready_task_and_totals_them(report, monkeypatch):
    ready = {"sst2", "mrpc"}
    monkeypatch.setattr(report, "students_ready", lambda task: task in ready)
    counts = {"sst2": {"examples": 10, "kd": 7, "adkd": 3}, "mrpc": {"examples": 9, "kd": 2, "adkd": 7}}
    seen = []
    monkeypatch.setattr(report, "case_study_row", lambda task, n: (seen.append(task) or f"| {task} |", counts[task]))
    lines = report.case_study()
    assert seen == ["sst2", "mrpc"]  # every ready classification task, in CASE_TASKS order; STS-B never
    assert lines[-3:] == ["| sst2 |", "| mrpc |", "| all | 19 | 9 | 10 | | | |"]
    monkeypatch.setattr(report, "students_ready", lambda task: False)
    assert report.case_study() == ["(no classification task has its seed-1 KD and AD-KD students yet)"]


def test_seeds_option_reads_positive_integers_and_names_a_bad_entry(reproduce):
    assert reproduce.parse_seeds(None) is None
    assert reproduce.parse_seeds("2, 3") == [2, 3]
    for bad, shown in (("a", "'a'"), ("1,0", "'0'"), ("1,-2", "'-2'"), ("1,,2", "''")):
        with pytest.raises(ValueError, match=f"positive integers, got {shown}"):
            reproduce.parse_seeds(bad)


def test_table_shows_the_students_teacher_apart_from_the_teacher_mean(report):
    results = {
        ("rte", "teacher"): [{"seed": 2, "best": {"dev/accuracy": 54.5}}, {"seed": 1, "best": {"dev/accuracy": 57.4}}],
        ("mrpc", "teacher"): [{"seed": 2, "best": {"dev/f1": 86.8}}],
    }  # no seed-1 teacher: an empty cell
    lines = report.table(results).splitlines()
    teacher, students_teacher = lines[2], lines[3]
    assert teacher.startswith("| Teacher (MiniLM") and "| 56.0 ± 2.1 (2) | 86.8 (1) |" in teacher  # std: 2.9 / sqrt(2)
    assert students_teacher.startswith("| Teacher, seed 1") and "| 57.4 (1) | — |" in students_teacher


def test_the_glue_folder_is_an_option_with_a_one_line_error(reproduce, tmp_path):
    reproduce.DATA["glue"] = tmp_path  # no MRPC/ in it
    try:
        with pytest.raises(SystemExit, match="--data-dir must name a folder with the GLUE task folders"):
            reproduce.glue_dir()
    finally:
        reproduce.DATA["glue"] = Path(__file__).parent / "data" / "glue"


def test_study_v2_follows_its_protocol(study_v2):
    known = {"finetune": flags_of("finetune"), "distill": flags_of("distill")}
    # the best of v1's three teacher seeds on dev (bench/results/reproduce/<task>/teacher/seed<N>.json)
    assert {t: study_v2.teacher_seed(t) for t in study_v2.TASKS} == {"mrpc": 2, "stsb": 3, "cola": 3, "sst2": 2}
    runs = study_v2.plan(["mrpc", "sst2"], list(study_v2.ROWS), [1, 2])
    names = [(r.task, r.row, r.seed) for r in runs]
    assert names[:4] == [("mrpc", "teacher", 2), ("mrpc", "no_teacher", 1), ("mrpc", "kd", 1), ("mrpc", "adkd", 1)]
    assert names.index(("sst2", "adkd", 1)) < names.index(("mrpc", "no_teacher", 2))  # seed 1 everywhere first (gate)
    assert len(runs) == 2 + 2 * 3 * 2
    glue = Path("GLUE")
    for run in runs:
        argv = study_v2.command(run, glue)
        command = argv[3]
        used = [a for a in argv if a.startswith("--")]
        assert set(used) <= known[command], (run, set(used) - known[command])
        value = {flag: argv[argv.index(flag) + 1] for flag in used if argv.index(flag) + 1 < len(argv)}
        assert value["--seed"] == str(run.seed)
        if run.row == "teacher":
            continue
        # students: pre-trained MiniLM layers 0, 2, 4; 6 epochs at 5e-5, batch 32, length 128; T annealed per epoch
        assert (value["--student-layers"], value["--epochs"], value["--lr"]) == ("0,2,4", "6", "5e-05")
        assert (value["--batch-size"], value["--max-length"], value["--anneal-every"]) == ("32", "128", "epoch")
        assert "--student-from" in used and "--student-init" not in used
        assert value["--teacher"].endswith(f"teacher-seed{study_v2.teacher_seed(run.task)}")
        # one fixed training subset for every seed and row where the task has more than 8,000 examples
        assert ("--subset-seed" in used) == (run.task == "sst2")
        if run.task == "sst2":
            assert (value["--train-limit"], value["--subset-seed"]) == ("8000", "0")
        assert ("--alpha" in used and value["--alpha"] == "0") == (run.row == "no_teacher")


def test_the_report_sees_the_data_dir_and_the_config_of_the_command_line(tmp_path):
    """``python bench/reproduce.py report --data-dir D --config paper``: the report reads D and the paper's folder."""
    import subprocess

    bench = Path(__file__).resolve().parents[1] / "bench"
    for task in ("RTE", "MRPC", "STS-B", "CoLA", "SST-2"):
        (tmp_path / task).mkdir()
    script = f"""
import runpy, sys, types
seen = {{}}
def write_report():
    from reproduce import RESULTS, glue_dir
    seen.update(results=str(RESULTS), glue=str(glue_dir()))
sys.modules["reproduce_report"] = types.SimpleNamespace(write_report=write_report)
sys.path.insert(0, {str(bench)!r})
sys.argv = ["reproduce.py", "report", "--data-dir", {str(tmp_path)!r}, "--config", "paper"]
runpy.run_path({str(bench / "reproduce.py")!r}, run_name="__main__")
print(seen["results"]); print(seen["glue"])
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results, glue = proc.stdout.split()
    assert results.endswith("bench/results/paper") and glue == str(tmp_path)
