//! What a message carries and what is counted about it: request ids, trace context, the relays passed and the pods that answered, metrics, and faults on demand.
//!
//! The lowest wing but the shared helpers: it imports none of the others
//! (the spans that leave the process are [`crate::otlp`]'s).

pub(crate) mod fault;
pub(crate) mod lineage;
pub(crate) mod metrics;
pub(crate) mod request_id;
pub(crate) mod trace;
pub(crate) mod via;
