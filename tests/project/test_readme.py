"""The usage example in README.md runs and trains."""

import pathlib
import re

import optax
import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_usage_example_reaches_a_small_loss():
  text = README.read_text()
  blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
  assert blocks, "README.md has no python example"
  namespace = {}
  exec(compile(blocks[0], str(README), "exec"), namespace)
  assert float(namespace["loss"]) < 1e-6
  # From lr0 = 1e-3 the climbed rate must have risen (the scale search and
  # the decisions take it to about 0.1); the rate printed is the one applied
  # at the last step, which total_steps has shortened to about a sixtieth.
  climbed = float(optax.tree.get(namespace["opt_state"], "learning_rate"))
  assert climbed > 1e-2
  assert float(namespace["lr"]) == pytest.approx(climbed / 60, rel=1e-3)


def test_readme_quick_start_has_the_two_commands():
  text = README.read_text()
  assert 'pip install -e ".[examples]" && python examples/mnist/main.py' in text
  assert re.search(r'^pip install -e "\.\[test\]" && python -m pytest', text,
                   flags=re.MULTILINE)  # fmt: skip
