"""Every row of the bad-input table (harness/bad_inputs.py, docs/BAD_INPUT.md): the CLI exits
2 with one line naming the problem, the API raises a typed HadesError."""
import pytest

from harness.bad_inputs import TABLE, run_case


@pytest.mark.parametrize("case", TABLE, ids=[c.name for c in TABLE])
def test_bad_input_is_refused_clearly(tmp_path, case):
    out = run_case(case, tmp_path)
    assert case.expect in out.message, out.message
    assert "Traceback" not in out.message


TRACE_FILE_CASES = [c for c in TABLE if c.where == "trace file"]


@pytest.mark.parametrize("case", TRACE_FILE_CASES, ids=[c.name for c in TRACE_FILE_CASES])
def test_bad_trace_file_raises_trace_error_from_the_api(tmp_path, case):
    """The same files through the API: read_trace raises TraceError with the same one line."""
    from hades.errors import TraceError
    from hades.traces.format import read_trace
    argv = case.make(tmp_path)
    assert argv[0] == "verify" and len(argv) == 2
    with pytest.raises(TraceError) as ei:
        read_trace(argv[1])
    msg = str(ei.value)
    assert case.expect in msg and argv[1] in msg and "\n" not in msg
