//! The job kinds, one file each, and [`ALL`]: the one list of them.
//!
//! A kind is a type implementing [`JobKind`] (its input, steps, secrets, timeout and `run`);
//! the queue in [`crate::jobs`] knows none of them by name. Adding a kind is its file and one
//! line in [`ALL`]: the engine installs this list when it is created, workers claim exactly
//! these kinds, and stored inputs are read with them.

pub mod backup;
pub mod command;
pub mod import;
pub mod maintenance;
pub mod prune;
pub mod restore;
pub mod verify;

#[cfg(test)]
mod nothing;

#[cfg(doc)]
use crate::jobs::JobKind;
use crate::jobs::KindEntry;

/// Every kind this build runs.
pub static ALL: &[KindEntry] = &[
    KindEntry::of::<command::Command>(),
    KindEntry::of::<backup::Backup>(),
    KindEntry::of::<verify::Verify>(),
    KindEntry::of::<restore::Restore>(),
    KindEntry::of::<maintenance::Maintenance>(),
    KindEntry::of::<prune::Prune>(),
    KindEntry::of::<import::Import>(),
    #[cfg(test)]
    KindEntry::of::<nothing::Nothing>(),
];
