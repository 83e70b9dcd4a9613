from hades.fl.verifier import verify_round  # noqa: F401
