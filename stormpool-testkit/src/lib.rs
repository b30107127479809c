//! Test support for stormpool: a loopback TCP fault proxy and database helpers.
