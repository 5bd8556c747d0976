"""HR sources: the ESR-style extract, validation and quarantine, delta detection, synthetic data."""
