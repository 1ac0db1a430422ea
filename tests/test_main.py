"""``python -m numba_convt``: options, exit statuses, the checks and the timing progress."""

import subprocess
import sys

import pytest

import numba_convt
from numba_convt import __main__ as job


def run_job(*args, code=None):
    """``python -m numba_convt ARGS`` (or ``python -c CODE``) in a subprocess."""
    command = ["-c", code] if code else ["-m", "numba_convt", *args]
    return subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=600)


def test_help_describes_the_job():
    result = run_job("--help")
    assert result.returncode == 0
    for text in ("usage: python -m numba_convt", "'numpy' reference", "--backend NAME", "--dtype NAME",
                 "--no-timings", "Exit status 1 if a check fails"):
        assert text in result.stdout


def test_checks_one_backend_in_one_dtype():
    result = run_job("--backend", "cpu", "--dtype", "float64", "--no-timings")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.endswith(" ok")]
    assert len(lines) == len(job.CHECKS)
    assert all(line.split()[:1] == ["cpu"] and " float64 " in line for line in lines)
    assert "timings" not in result.stdout and result.stdout.rstrip().endswith("all checks passed")


def test_checks_cover_every_function_and_rank():
    """conv_transpose reaches 1-D and 3-D; each rank has a layer with 16 or more channels
    (the cpu backend's BLAS and tiled paths) and one in the channels-first layout."""
    functions = {row[1] for row in job.CHECKS}
    assert functions == {"conv1d_transpose", "conv2d_transpose", "conv3d_transpose", "conv_transpose"}
    by_rank = {}
    for _, function, _, f_shape, *_, data_format, _ in job.CHECKS:
        by_rank.setdefault(len(f_shape) - 2, []).append((function, f_shape, data_format))
    assert sorted(by_rank) == [1, 2, 3]
    for rank in (1, 3):
        assert any(function == "conv_transpose" for function, _, _ in by_rank[rank])
        assert any(min(f_shape[-2:]) >= 16 for _, f_shape, _ in by_rank[rank])
        assert any(data_format[1] == "C" for _, _, data_format in by_rank[rank])


def test_a_backend_wrong_in_1d_and_3d_only_fails_those_checks():
    """A backend right in 2-D (the reference) but zero for other ranks: the N-d checks catch it."""
    code = """if True:
        import sys
        import numba_convt
        from numba_convt.__main__ import main
        reference = numba_convt.get_backend("numpy").run
        def planar(spec, x, filters, out):
            if spec.rank == 2:
                reference(spec, x, filters, out)
            else:
                out[...] = 0
        numba_convt.register_backend("planar", planar)
        sys.exit(main(["--backend", "planar", "--dtype", "float64", "--no-timings"]))
    """
    result = run_job(code=code)
    assert result.returncode == 1, result.stderr
    failed = {line.split()[1] for line in result.stdout.splitlines() if line.endswith("FAIL")}
    assert failed == {row[0] for row in job.CHECKS if len(row[3]) != 4}


@pytest.mark.parametrize("args, message", [
    (["--backend", "gpu"], "--backend: backend 'gpu' is unknown; available backends: auto, cpu, numpy"),
    (["--backend", "cpu,"], "--backend: backend '' is unknown"),
    (["--dtype", "float32,float8"], "--dtype: 'float8' is not a dtype; accepted: float16, "),
    (["--dtype", "uint8"], "--dtype: uint8 is not supported; accepted: "),
    (["--threads", "2"], "unrecognized arguments: --threads 2"),
])
def test_bad_options_exit_2_with_a_message(args, message):
    result = run_job(*args)
    assert result.returncode == 2
    assert message in result.stderr and "usage: python -m numba_convt" in result.stderr


def test_a_failing_check_exits_1():
    """Backends registered in the job's own process: one wrong, one raising."""
    code = """if True:
        import sys
        import numba_convt
        from numba_convt.__main__ import main
        def zeros(spec, x, filters, out):
            out[...] = 0
        def raises(spec, x, filters, out):
            raise RuntimeError("broken kernel")
        numba_convt.register_backend("zeros", zeros)
        numba_convt.register_backend("raises", raises)
        sys.exit(main(["--backend", "zeros,raises", "--dtype", "int32", "--no-timings"]))
    """
    result = run_job(code=code)
    assert result.returncode == 1, result.stderr
    failures = [line for line in result.stdout.splitlines() if line.endswith("FAIL")]
    assert len(failures) == 2 * len(job.CHECKS)
    assert sum("raised RuntimeError: broken kernel" in line for line in failures) == len(job.CHECKS)
    assert f"{2 * len(job.CHECKS)} checks FAILED" in result.stdout


def test_numpy_is_not_checked_against_itself(capsys):
    assert job.main(["--backend", "numpy", "--dtype", "int32", "--no-timings"]) == 0
    assert "numpy    is the reference: not checked against itself" in capsys.readouterr().out


def test_timings_announce_each_layer_in_the_first_float_dtype(monkeypatch, capsys):
    monkeypatch.setattr(job, "TIMINGS", [("tiny", (1, 4, 4, 2), (3, 3, 2, 2), [1, 8, 8, 2], 2, "SAME"),
                                         ("tinier", (1, 2, 2, 1), (2, 2, 1, 1), [1, 4, 4, 1], 2, "VALID")])
    assert job.main(["--backend", "cpu,numpy", "--dtype", "int32", "--dtype", "float64,float32"]) == 0
    out = capsys.readouterr().out
    assert "float64 timings" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("[")]
    assert [row[:3] for row in rows] == [["[1/4]", "cpu", "tiny"], ["[2/4]", "cpu", "tinier"],
                                         ["[3/4]", "numpy", "tiny"], ["[4/4]", "numpy", "tinier"]]
    assert all(float(row[-2]) > 0 for row in rows)  # ms column filled in


def test_default_backends_are_the_available_ones():
    args = job.parse_args([])
    assert args.backends == numba_convt.available_backends()
    assert args.timed == [numba_convt.get_backend("auto").name]
    assert [d.name for d in args.dtypes] == ["float32", "float64", "int32"]
