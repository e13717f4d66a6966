//! Integration tests of the `wardcheck-relay` binary, one module per topic.

mod cli;
mod console;
