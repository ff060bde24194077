//! placeholder
pub mod s3;
