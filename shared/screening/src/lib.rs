//! Screening (省级初筛): placeholder, being written.
