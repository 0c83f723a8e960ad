//! Integration tests of the Conditional Access engine, one module per rule family. Expected
//! answers come from the reference notes on Entra (`shared/reference/entra-model.md`).

mod analyze;
mod conditions;
mod device_filter;
mod grant;
mod graph_io;
mod lint;
mod precedence;
mod properties;
mod story;
mod support;
mod targets;
mod unsupported;
mod users;
mod whatif;
