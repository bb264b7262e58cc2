"""The facts a bench run records about itself: which commit, and whether code differs from it."""

from __future__ import annotations

import subprocess

from bench import machine


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_only_changes_outside_the_bench_outputs_make_a_run_dirty(tmp_path, monkeypatch):
    for path in ("app/x.py", "bench/results/serve.json", "docs/benchmarks.md", "docs/img/a.png"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("0\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    monkeypatch.setattr(machine, "ROOT", tmp_path)
    assert machine.commit()["dirty"] is False
    for path in ("bench/results/serve.json", "docs/benchmarks.md", "docs/img/a.png"):
        (tmp_path / path).write_text("1\n")  # what a bench run rewrites
    facts = machine.commit()
    assert facts["dirty"] is False and len(facts["commit"]) >= 7
    (tmp_path / "app/x.py").write_text("1\n")
    assert machine.commit()["dirty"] is True
