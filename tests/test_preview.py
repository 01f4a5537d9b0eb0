"""lowrank.preview: a figure drawn from finished and partial runs by the real figures' code, marked as a preview."""

from __future__ import annotations

import json
from pathlib import Path

from lowrank import layout, plan, preview, status
from lowrank.plots import style
from test_aggregate import write_fake_run

ROOT = Path(__file__).resolve().parents[1]


def test_a_preview_draws_finished_and_partial_runs_and_says_so(tmp_path, monkeypatch):
    """Fig 8 (six runs, B = 4 ... 128): B = 4 and 8 finished at epoch 2, B = 16 still training at epoch 1 (partial
    logs), B = 32's partial logs cut between two files (left out), the rest without logs."""
    config = {**plan.load(ROOT / "config.yaml"), "results": str(tmp_path)}
    everything = plan.build(config)
    by_b = {everything.runs[r].batch_size: everything.runs[r] for r in everything.figure_runs["fig08"]}
    for b in (4, 8):
        write_fake_run(layout.runs_dir(tmp_path), by_b[b])
    live = layout.live_dir(tmp_path)
    write_fake_run(live, by_b[16], epochs=(0, 1), status="running")
    write_fake_run(live, by_b[32], epochs=(0, 1), status="running")
    cut = layout.run_file(layout.run_dir(live, by_b[32].run_id), "summary")
    cut.write_text(json.dumps({**json.loads(cut.read_text()), "epochs_completed": 4}))  # layers.csv ends at 1
    drawn = []
    monkeypatch.setattr(style, "save", lambda fig, png, pdf, save=style.save: (drawn.append(fig), save(fig, png, pdf)))

    png, note = preview.draw(config, "fig08", everything.figure_runs["fig08"])

    assert png == layout.preview_file(tmp_path, "fig08", "png") and png.is_file()
    assert png.with_suffix(".pdf").is_file() and not (tmp_path / "figures").exists()
    assert note == f"PREVIEW — 2 of 6 runs finished, epochs ≤ 1 (left out, logs being rewritten: {by_b[32].run_id})"
    title = config["figures"]["fig08"]["title"]
    assert drawn[0]._suptitle.get_text() == f"PREVIEW — 2 of 6 runs finished, epochs ≤ 1: {title}"
    rank = drawn[0].axes[0]
    assert sorted(list(line.get_xdata()) for line in rank.lines) == [[0, 1], [0, 1, 2], [0, 1, 2]]
    assert [t.get_text() for t in rank.get_legend().get_texts()] == ["B = 4", "B = 8", "B = 16"]  # none "diverged"
    assert not [line for line in rank.lines if line.get_marker() == "x"]  # nor marked as one


def test_status_draws_previews_and_says_when_there_is_nothing_yet(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    config = status.load_config([], [f"results={tmp_path}"])
    write_fake_run(layout.runs_dir(tmp_path), plan.build(config).runs[plan.build(config).figure_runs["fig18"][0]])
    assert status.main(["--config", f"results={tmp_path}", "--preview", "fig18", "fig17", "fig99"]) == 1
    lines = capsys.readouterr().out.splitlines()[-3:]
    assert lines == [f"fig18: drew {layout.preview_file(tmp_path, 'fig18', 'png')} (PREVIEW — 1 of 1 runs finished, "
                     "epochs ≤ 2)",
                     "fig17: nothing to draw yet: none of its 6 runs has logs yet",
                     f"fig99: not drawn: no figure fig99 in the config (figures: {', '.join(config['figures'])})"]
