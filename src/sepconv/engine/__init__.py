"""Engine: the loops shared by the CLI, training and benchmarks (evaluation, ...)."""
