"""The README's ``>>>`` examples run as doctests, as a new user would type them."""

import doctest
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_examples():
    # Code fences end an example's expected output, as the blank line they stand for.
    lines = README.read_text(encoding="utf-8").splitlines()
    text = "\n".join("" if line.startswith("```") else line for line in lines)
    test = doctest.DocTestParser().get_doctest(text, {}, README.name, str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)  # reports each failing example on stdout
    assert len(test.examples) >= 20, "the README's examples were not found"
    assert runner.failures == 0
