//! DOMAIN.md's opt-out rule, end to end through `subaudit optouts`.
