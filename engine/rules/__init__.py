"""Rules: the DSL and Flux YAML readers and writers, reference checks and lints."""
