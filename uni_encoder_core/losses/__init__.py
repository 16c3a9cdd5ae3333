"""Training losses of the unified model (paper eqs. 1-5)."""
