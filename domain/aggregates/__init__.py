"""Event-sourced aggregates: TrainingJob and Budget."""
