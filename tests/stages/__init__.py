"""Stage tests on the synthetic region of tests/data/synthetic: every stage in seconds."""
