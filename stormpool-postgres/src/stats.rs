//! What the manager counts across its connections: the core's
//! [`StatementCounters`](stormpool::statements::StatementCounters).

pub(crate) use stormpool::statements::StatementCounters as Counters;
