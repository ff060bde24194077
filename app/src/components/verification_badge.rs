use leptos::prelude::*;

use crate::{format::utc, types::BackupVerification};

/// The last checksum verification of a backup as a coloured word; the time and any problem
/// in its tooltip.
#[component]
pub fn VerificationBadge(verification: BackupVerification) -> impl IntoView {
    let (class, word, title) = match verification {
        BackupVerification::Never => (
            "verify-never",
            "not verified",
            "Its checksums were never checked.".to_string(),
        ),
        BackupVerification::Ok { at_ms } => ("verify-ok", "ok", format!("Checksums matched at {}", utc(at_ms))),
        BackupVerification::Failed { at_ms, problem } => (
            "verify-failed",
            "failed",
            format!("Verification at {} failed: {problem}", utc(at_ms)),
        ),
    };
    view! { <span class=format!("verify {class}") title=title>{word}</span> }
}

/// The same, as a sentence for the backup's page.
pub fn verification_sentence(verification: &BackupVerification) -> String {
    match verification {
        BackupVerification::Never => "Never verified.".to_string(),
        BackupVerification::Ok { at_ms } => format!("Every artifact matched its checksum at {}.", utc(*at_ms)),
        BackupVerification::Failed { at_ms, problem } => format!("Failed at {}: {problem}", utc(*at_ms)),
    }
}
