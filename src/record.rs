//! What is kept: the line that records a message, the log it is written to, the `LOG_DIR` files, and the loss report that reads them back.

pub(crate) mod log_dir;
pub(crate) mod logger;
pub mod loss_report;
pub mod message;
