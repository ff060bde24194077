//! The periodic checks: backups overdue, environments in maintenance for too long, and the end
//! of each. They see states, not events, so each notifies when its episode begins
//! ([`Repeat::Once`]).

use super::{Alert, Kind, Repeat, Severity, condition_backup, raise, resolve, when};
use crate::{Engine, db::notifications as rows};

impl Engine {
    /// The periodic checks: backups overdue, environments in maintenance for too long (and the
    /// end of each). Safe to run on every instance at once: an episode begins once.
    pub async fn check_conditions(&self, now: i64) -> sqlx::Result<()> {
        let config = &self.config().notifications;
        for env in &self.config().environments {
            let name = env.name.as_str();
            let tz = env.tz();
            if let Some(hours) = env.backup_expected_within_hours
                && !env.resources.is_empty()
            {
                let key = condition_backup(name);
                let limit_ms = i64::from(hours) * 3_600_000;
                let newest = crate::db::backups::latest(self.db().pool(), name)
                    .await?
                    .map(|backup| backup.created_at);
                // Without any backup, the clock starts when Steward first looked.
                let since = match newest {
                    Some(at) => at,
                    None => {
                        let mut tx = self.db().begin_write().await?;
                        rows::ensure_condition(&mut *tx, &key, now).await?;
                        tx.commit().await?;
                        rows::condition(self.db().pool(), &key).await?.map_or(now, |c| c.since)
                    }
                };
                if now - since > limit_ms {
                    let summary = match newest {
                        Some(at) => format!(
                            "{name}: backup overdue: the last successful backup is from {} ({} hours ago); one is expected every {hours} hours",
                            when(at, tz),
                            (now - at) / 3_600_000
                        ),
                        None => format!(
                            "{name}: backup overdue: no backup since Steward began watching at {}; one is expected every {hours} hours",
                            when(since, tz)
                        ),
                    };
                    let alert = Alert {
                        kind: Kind::BackupOverdue,
                        environment: Some(name.to_string()),
                        severity: Severity::Critical,
                        summary,
                        detail: None,
                        link: format!("/environments/{name}"),
                        job_id: None,
                    };
                    let mut tx = self.db().begin_write().await?;
                    raise(&mut tx, config, &key, alert, Repeat::Once, now).await?;
                    tx.commit().await?;
                }
            }

            let key = format!("maintenance:{name}");
            let maintenance = crate::db::maintenance::get(self.db().pool(), name).await?;
            match maintenance {
                Some(m)
                    if config.maintenance_alert_minutes > 0
                        && now - m.since > i64::from(config.maintenance_alert_minutes) * 60_000 =>
                {
                    let alert = Alert {
                        kind: Kind::MaintenanceLong,
                        environment: Some(name.to_string()),
                        severity: Severity::Warning,
                        summary: format!(
                            "{name} has been in maintenance since {} ({} minutes), entered by {}: {}",
                            when(m.since, tz),
                            (now - m.since) / 60_000,
                            m.entered_by,
                            m.reason
                        ),
                        detail: None,
                        link: format!("/environments/{name}"),
                        job_id: m.job_id,
                    };
                    let mut tx = self.db().begin_write().await?;
                    raise(&mut tx, config, &key, alert, Repeat::Once, now).await?;
                    tx.commit().await?;
                }
                Some(_) => {}
                None => {
                    // Only a write when an episode is going on.
                    if rows::condition(self.db().pool(), &key)
                        .await?
                        .is_some_and(|c| c.firing != 0)
                    {
                        let mut tx = self.db().begin_write().await?;
                        resolve(
                            &mut tx,
                            config,
                            &key,
                            |c| Alert {
                                kind: Kind::Recovered,
                                environment: Some(name.to_string()),
                                severity: Severity::Warning,
                                summary: format!(
                                    "{name} is out of maintenance (it had been in maintenance too long since {})",
                                    when(c.since, tz)
                                ),
                                detail: None,
                                link: format!("/environments/{name}"),
                                job_id: None,
                            },
                            now,
                        )
                        .await?;
                        tx.commit().await?;
                    }
                }
            }
        }
        Ok(())
    }
}
