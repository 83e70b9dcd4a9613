"""Typed exceptions of the HADES API. The CLI maps every one of them to one line on stderr
and exit status 2; anything else is a bug and keeps its traceback."""


class HadesError(Exception):
    """Base class of every error the API raises on bad input or bad configuration."""


class TraceError(HadesError):
    """A trace file (or an in-memory round) violates the trace contract."""


class ConfigError(HadesError):
    """An impossible hardware or sweep configuration."""


class OutputError(HadesError):
    """An output file cannot be written (unwritable folder, a directory in the way, ...)."""


class ModelError(HadesError):
    """A model pair cannot be loaded or used (missing weights, tokenizer mismatch)."""
