//! Jail lifecycle state machine and the pure start/stop planner.
