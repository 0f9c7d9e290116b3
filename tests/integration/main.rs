//! Integration tests: cpgate and a recording mock cPanel in-process on port 0.

mod canary;
mod forwarding;
mod refusals;
mod support;
