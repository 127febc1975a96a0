//! Every integration test in one binary (one link of DataFusion instead of one
//! per file), a module per area. nextest still runs each test in its own process.

mod aggregates_partitioning;
mod ast_fuzz;
mod bad_files;
mod bench;
mod cancellation;
mod cluster;
mod common;
mod corrupt_files;
mod dataset;
mod export;
mod flight_protocol;
mod flight_sql;
mod function_fuzz;
mod function_reference;
mod killed_server;
mod load;
mod logic_fuzz;
mod member_ranges;
mod memory_limits;
mod object_storage;
mod oracles;
mod pool_honesty;
mod protocol_abuse;
mod query_cli;
mod query_errors;
mod sql_files;
mod sql_files_at_once;
mod table_loads;
mod table_maintenance;
mod vanishing_clients;

/// Counts live heap bytes for `pool_honesty` (reliability M5).
#[global_allocator]
static ALLOCATOR: common::counting_alloc::Counting = common::counting_alloc::Counting;
