//! The audit rules, all offline over a snapshot: keywords and opt-outs, the mapping and its
//! proposal, the migration plan, usage and its attribution to customers.

pub mod attribution;
pub mod keywords;
pub mod mapping;
pub mod optouts;
pub mod plan;
pub mod proposal;
pub mod usage;
