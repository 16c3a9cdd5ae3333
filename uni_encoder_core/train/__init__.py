"""Training: the stages of the paper's schedule, the loop that runs them, and the steering cross-testing."""
