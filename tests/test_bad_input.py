"""Every row of the bad-input table (harness/bad_inputs.py, docs/BAD_INPUT.md): the CLI exits
2 with one line naming the problem, the API raises a typed HadesError."""
import pytest

from harness.bad_inputs import TABLE, run_case


@pytest.mark.parametrize("case", TABLE, ids=[c.name for c in TABLE])
def test_bad_input_is_refused_clearly(tmp_path, case):
    out = run_case(case, tmp_path)
    assert case.expect in out.message, out.message
    assert "Traceback" not in out.message
