//! Workflow rules: placeholder, being written.
