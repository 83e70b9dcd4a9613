"""RTL checks of the logit block that the shared case table does not make: Verilog emission
and lint, and the configurations its constructor refuses."""
from __future__ import annotations

import shutil

import pytest

from hades.config import VerifierConfig
from hades.errors import ConfigError
from hades.logit_protocol import LogitLayout

needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")


@needs_verilator
@pytest.mark.parametrize("cfg", [VerifierConfig(lanes=4, vocab_max=64, gamma_max=4),
                                 VerifierConfig(lanes=16, vocab_max=65536, gamma_max=4, prob_bits=12,
                                                uniform_bits=24)],
                         ids=["L4_V64", "L16_V65536_W12_U24"])
def test_logit_verilog_lints_clean(tmp_path, cfg):
    from hades.rtl.emit import emit_verilog, lint_verilog
    path = emit_verilog(cfg, tmp_path, logits=True)
    name = LogitLayout(cfg).module_name()
    assert f"module {name}" in path.read_text() and "__" not in name
    lint_verilog(path, name)   # raises on any warning outside the documented waivers


@pytest.mark.parametrize("cfg, message", [
    (VerifierConfig(lanes=4, vocab_max=64, gamma_max=4, sram_words=100), "cannot hold the logit block's 4 draft and 5"),
    (VerifierConfig(lanes=64, vocab_max=4096, gamma_max=4), "PyMTL3 signals stop at 1023 bits"),
    (VerifierConfig(lanes=64, vocab_max=64, gamma_max=4), "vocab_max > lanes"),
])
def test_logit_rtl_refuses(cfg, message):
    from hades.rtl.logit_verifier import LogitVerifierRTL
    with pytest.raises(ConfigError, match=message):
        LogitVerifierRTL(cfg).elaborate()
