"""The report's front page: data and run counts, the paper-vs-here table, the scorecard, valid RST."""

from pathlib import Path

import docutils.core
import pytest

from lowrank import grid, plan
from lowrank.frontpage import data_label, front_page, setting

ROOT = Path(__file__).resolve().parents[1]
SCORECARD = "# Scorecard\n\n| claim | verdict |\n|---|---|\n| rank falls with λ | supported \\| weakly |\n"


@pytest.fixture(scope="module")
def paper() -> dict:
    return plan.load(ROOT / "config.yaml")


@pytest.fixture(scope="module")
def demo() -> dict:
    return plan.load(ROOT / "config.yaml", ROOT / "config" / "demo.yaml")


def html(rst: str) -> str:
    """RST rendered as the report renders it; any docutils warning fails the test."""
    return docutils.core.publish_parts(rst, writer="html", settings_overrides={"halt_level": 2})["html_body"]


def test_demo_front_page_names_the_data_counts_runs_and_shows_the_differences(demo, paper):
    text = front_page(demo, paper, SCORECARD)
    assert text.startswith("DEMO (UCI digits 16×16): ")
    assert "**83 distinct runs**" in text
    assert "- digits (UCI) 1×16×16, 1,442 train: 77 runs" in text
    assert "- digits (UCI) 1×8×8, 1,442 train: 3 runs" in text
    assert "- synthetic 3×16×16, 384 train: 3 runs" in text
    # Fig 5: CIFAR-10 MLP-BN-10-100 for 500 epochs over six B in the paper; digits, 4 x 64, 10 epochs, 3 B here
    row = text[text.index("   * - fig05"):text.index("   * - fig06")]
    assert "CIFAR-10 3×32×32, 50,000 train → digits (UCI) 1×16×16, 1,442 train" in row
    assert "mlp_bn activation=relu depth=10 width=100 → mlp_bn activation=relu depth=4 width=64" in row
    assert "resnet18 activation=leaky_relu width=64 → resnet18 activation=leaky_relu width=4" in text
    assert "500 → 10" in row and "4, 8, 16, 32, 64, 128 → 4, 16, 64" in row
    assert "    | rank falls with λ | supported \\| weakly |" in text  # the scorecard verbatim, as a literal block
    body = html(text)
    assert "<table" in body and "supported \\| weakly" in body


def test_paper_front_page_has_no_differences_and_no_demo_banner(paper):
    text = front_page(paper, paper, SCORECARD)
    assert "None: every figure is trained as config.yaml sets out the paper's grid." in text
    assert "list-table" not in text and "DEMO" not in text
    assert "- SVHN 3×32×32, 73,257 train: 4 runs" in text
    html(text)


def test_setting_and_data_label_read_the_runs(demo):
    fig13 = setting(demo, "fig13")
    assert fig13["data"] == ("digits (UCI) 1×16×16, 1,442 train; digits (UCI) 1×8×8, 1,442 train; "
                             "synthetic 3×16×16, 384 train")
    assert (fig13["epochs"], fig13["B"]) == ("10", "16")
    run = grid.figure_runs(demo, "fig13")[-1].run
    assert data_label(run) == "synthetic 3×16×16, 384 train"
