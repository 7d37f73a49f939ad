//! The evaluation (issue: `docent eval`): metrics first; suites and reports build on them.

pub mod metrics;
