"""Executes examples/quickstart.ipynb, in this interpreter, and checks its outputs."""

import sys
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
kernelspec = pytest.importorskip("ipykernel.kernelspec")
pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK = EXAMPLES / "quickstart.ipynb"


def _files(folder):
    return sorted(path.relative_to(folder) for path in folder.rglob("*"))


@pytest.fixture
def this_python_kernel(tmp_path, monkeypatch):
    """A "python3" kernelspec running sys.executable, found before any user-installed one."""
    kernelspec.write_kernel_spec(tmp_path / "kernels" / "python3")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return "python3"


def test_quickstart_notebook_runs(this_python_kernel):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert not any(cell.get("outputs") for cell in notebook.cells), "store the notebook without outputs"

    notebook.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)", id="interpreter"))
    before = _files(EXAMPLES)
    nbclient.NotebookClient(
        notebook, kernel_name=this_python_kernel, timeout=600, resources={"metadata": {"path": str(EXAMPLES)}},
    ).execute()  # a cell that errors raises CellExecutionError, naming the cell

    outputs = {cell.id: cell.get("outputs", []) for cell in notebook.cells}
    printed = {cell_id: "".join(out.get("text", "") for out in outs) for cell_id, outs in outputs.items()}
    assert "check passed" in printed["verify"]
    assert "3-D check passed" in printed["verify_volume"]  # conv3d_transpose: reference, trilinear, NCDHW
    assert printed["interpreter"].strip() == sys.executable
    assert any("image/png" in out.get("data", {}) for outs in outputs.values() for out in outs)
    assert any("image/png" in out.get("data", {}) for out in outputs["slices"]), "no volume slices drawn"
    assert _files(EXAMPLES) == before, "executing the notebook left files in examples/"
