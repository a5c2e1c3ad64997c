//! The one integration-test binary: runs `subaudit` as a user would, one module per topic.

mod support;

mod optouts;
mod usage;
