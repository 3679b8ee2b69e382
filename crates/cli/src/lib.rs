//! The library half of the `contactdb` command-line tool: its arguments, its input
//! readers (CSV, JSON Lines, JSON, bulk requests) with their bounded reads, and small
//! shared helpers. The binary (`src/main.rs`) holds the commands; the fuzz targets
//! drive the input readers through this library.

pub mod cli;
pub mod input;
pub mod request;
pub mod util;
