"""Data: the synthetic driving world, typed samples and data sets."""
