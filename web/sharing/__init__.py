"""Job sharing (FR8.1.2): who may look at a job, its public view, and what the share panel shows."""
