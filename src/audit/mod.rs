//! The audit rules, all offline over a snapshot: opt-outs, the mapping, (later) the plan and
//! usage.

pub mod attribution;
pub mod keywords;
pub mod mapping;
pub mod optouts;
pub mod usage;
