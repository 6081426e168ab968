"""``guided-reopt``: the rolling re-optimiser with learned terms in its objective, trained on
full-information plans of the states it visits (``docs/guided_reopt.md``)."""
