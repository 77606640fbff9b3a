//! The checkpoint directory's parts beyond CRIU's images. For now: the files the checkpointed
//! process tree held open, recorded, sorted, saved and put back before each restore
//! (`files.rs`).

pub mod files;
