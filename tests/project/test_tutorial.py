"""docs/tutorial.py, the tutorial page's code, runs and says what the page
says: from a starting rate ten times too low, hillclimb_adam trains the
digits MLP far below Adam at that rate and at its usual 1e-3."""

import importlib.util
import pathlib

import pytest

pytest.importorskip("sklearn", reason='pip install -e ".[examples]"')
pytest.importorskip("matplotlib", reason='pip install -e ".[examples]"')

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.slow  # trains four MLPs for 400 steps
def test_tutorial_trains_and_writes_the_plot(tmp_path, capsys):
  spec = importlib.util.spec_from_file_location(
    "tutorial", DOCS / "tutorial.py"
  )
  tutorial = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tutorial)
  png = tmp_path / "tutorial.png"
  runs = tutorial.main(str(png))
  final = {name: run[1][-20:].mean() for name, run in runs.items()}
  climbed = "hillclimb_adam, lr0 1e-4"
  # Measured 0.020, against 1.74 for Adam at the same 1e-4 and 0.21 at 1e-3.
  assert final[climbed] < 0.05, final
  assert final[climbed] < 0.5 * final["adam, 1e-3"], final
  assert final[climbed] < 0.1 * final["adam, 1e-4"], final
  # The scale search and the decisions took the rate far above lr0; the
  # last of 400 steps applied (1 - 399/400) / 0.2 = 1/80 of it.
  _, _, rates, applied = runs[climbed]
  assert rates.min() > 1e-3, rates.min()
  assert applied[-1] == pytest.approx(rates[-1] / 80, rel=1e-4)
  assert len(runs[climbed][1]) == tutorial.NUM_STEPS
  printed = capsys.readouterr().out
  assert "hillclimb_adam, lr0 1e-4   final training loss" in printed
  assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
  assert png.stat().st_size > 20_000  # two panels with curves
