//! End-to-end tests: the real relay binary on 127.0.0.1, real core workspaces as phones.
//! One test binary, topic modules.

mod api;
mod authority;
mod bounds;
mod console;
mod criteria;
mod interop;
mod load;
mod node;
mod security;
mod support;
mod sync;
mod weak_link;
