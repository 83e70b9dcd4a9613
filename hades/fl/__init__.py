from hades.fl.verifier import verify_logit_round, verify_round, verify_weight_round  # noqa: F401
