//! The one integration-test binary: runs `subaudit` as a user would, one module per topic.

mod support;

mod compressed;
mod damage;
mod errors;
mod evidence;
mod help;
mod map;
mod migrate;
mod migration_e2e;
mod optouts;
mod plan;
mod plan_fidelity;
mod properties;
mod pull;
mod report_html;
mod sample;
mod snapshot_format;
mod twin;
mod usage;
