//! The chain against real SQLite and PostgreSQL: tampering by hand with SQL (triggers switched
//! off, as someone with the database's password could), concurrent writers, and the events of
//! an installation that existed before the chain.

use serde_json::json;
use sqlx::{Connection, Executor, migrate::Migrator};

use super::*;
use crate::db::audit::{NewEvent, Outcome, record};

fn event(n: usize) -> NewEvent<'static> {
    NewEvent {
        actor: Some("alice"),
        client_ip: Some("10.0.0.7"),
        action: "backup.pin",
        target: Some("prod-1"),
        outcome: Outcome::Ok,
        detail: json!({ "n": n, "environment": "prod" }),
        environment: None,
    }
}

async fn record_events(db: &Db, count: usize) {
    for n in 0..count {
        record(db.pool(), &event(n)).await.unwrap();
    }
}

/// Runs `sql` with the append-only triggers out of the way, as a database administrator could.
async fn tamper(db: &Db, sql: &str) {
    let mut conn = db.pool().acquire().await.unwrap();
    match db.backend() {
        Backend::Sqlite => {
            conn.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
                .await
                .unwrap();
            conn.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
                .await
                .unwrap();
        }
        Backend::Postgres => {
            conn.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_change")
                .await
                .unwrap();
        }
    }
    conn.execute(sql).await.unwrap();
}

crate::db_tests! {
    async fn an_untouched_chain_verifies_and_reports_its_head(db) {
        let empty = verify(db).await.unwrap();
        assert_eq!(empty, Report { checked: 0, head: None, problem: None });
        record_events(db, 5).await;
        let report = verify(db).await.unwrap();
        assert_eq!(report.problem, None);
        assert_eq!(report.checked, 5);
        let (head_id, head_hash) = report.head.unwrap();
        assert_eq!(head_id, 5);
        assert_eq!(head_hash.len(), 64);
        let environment: Option<String> = sqlx::query_scalar("SELECT environment FROM audit_event WHERE id = 1")
            .fetch_one(db.pool()).await.unwrap();
        assert_eq!(environment.as_deref(), Some("prod"), "taken from the detail");
    }

    async fn a_changed_detail_is_named(db) {
        record_events(db, 5).await;
        tamper(db, r#"UPDATE audit_event SET detail = '{"n":99,"environment":"prod"}' WHERE id = 3"#).await;
        let report = verify(db).await.unwrap();
        assert_eq!(report.problem, Some(Problem::Changed { id: 3 }));
        assert_eq!(report.checked, 2);
        assert_eq!(report.head.unwrap().0, 2, "the head is the last event the chain vouches for");
    }

    async fn a_removed_event_is_named(db) {
        record_events(db, 5).await;
        tamper(db, "DELETE FROM audit_event WHERE id = 3").await;
        let problem = verify(db).await.unwrap().problem.unwrap();
        assert_eq!(problem, Problem::Removed { id: 3, next: 4 });
        assert!(problem.to_string().starts_with("event 3 was removed"), "{problem}");
    }

    async fn an_event_inserted_by_hand_is_named(db) {
        record_events(db, 5).await;
        tamper(db, "INSERT INTO audit_event (id, at, actor, action, outcome, detail)
                    VALUES (4000, 1700000000000, 'mallory', 'login', 'ok', '{}')").await;
        assert_eq!(
            verify(db).await.unwrap().problem,
            Some(Problem::Inserted { id: 4000, why: "it has no hash" })
        );
        // Steward goes on writing after it, from the last event it wrote itself.
        record_events(db, 1).await;
        let (id, prev): (i64, i64) = sqlx::query_as("SELECT id, prev_id FROM audit_event ORDER BY id DESC LIMIT 1")
            .fetch_one(db.pool()).await.unwrap();
        assert_eq!((id, prev), (4001, 5));
    }

    async fn an_event_inserted_with_a_forged_link_is_named(db) {
        record_events(db, 5).await;
        tamper(db, "INSERT INTO audit_event (id, prev_id, at, actor, action, outcome, detail, hash)
                    VALUES (6, 5, 1700000000000, 'mallory', 'login', 'ok', '{}', 'ab')").await;
        assert_eq!(verify(db).await.unwrap().problem, Some(Problem::LastChanged { id: 6 }));
        // Followed by events Steward wrote: they chain from 6's stored hash, so 6 reads as changed.
        record_events(db, 2).await;
        assert_eq!(verify(db).await.unwrap().problem, Some(Problem::Changed { id: 6 }));
    }

    async fn a_cut_tail_is_caught_against_the_last_verification(db) {
        record_events(db, 5).await;
        let report = verify(db).await.unwrap();
        save_verification(db.pool(), &report, "cli").await.unwrap();
        tamper(db, "DELETE FROM audit_event WHERE id >= 4").await;
        let problem = verify(db).await.unwrap().problem.unwrap();
        assert!(matches!(problem, Problem::Truncated { head: 3, seen_head: 5, .. }), "{problem:?}");
        // Written again over the cut: still caught, the hash at 5 is not the one seen.
        record_events(db, 3).await;
        assert!(matches!(verify(db).await.unwrap().problem, Some(Problem::Truncated { seen_head: 5, .. })));
    }

    async fn writers_racing_on_two_pools_keep_one_line(db) {
        // A second pool on the same database is what a second Steward instance is.
        let other = Db::connect(db.url(), 4).await.unwrap();
        let write = |db: Db| async move {
            for n in 0..1_000 {
                record(db.pool(), &event(n)).await.unwrap();
            }
        };
        let (a, b) = tokio::join!(
            tokio::spawn(write(db.clone())),
            tokio::spawn(write(other.clone())),
        );
        a.unwrap();
        b.unwrap();
        let report = verify(db).await.unwrap();
        assert_eq!(report.problem, None);
        assert_eq!(report.checked, 2_000);
        other.close().await;
    }

    async fn events_in_a_callers_transaction_chain_at_commit(db) {
        record_events(db, 1).await;
        let mut tx = db.begin_write().await.unwrap();
        record(&mut *tx, &event(1)).await.unwrap();
        record(&mut *tx, &event(2)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = db.begin_write().await.unwrap();
        record(&mut *tx, &event(3)).await.unwrap();
        tx.rollback().await.unwrap();
        record_events(db, 1).await;
        let report = verify(db).await.unwrap();
        assert_eq!((report.checked, report.problem), (4, None));
    }

    async fn events_from_before_the_chain_get_one_from_the_migration(db) {
        // A database as the previous release left it: migrations up to 0009, events recorded.
        let fresh = match db.backend() {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("old.db").display());
                (Db::connect(&url, 2).await.unwrap(), Some(dir), None)
            }
            Backend::Postgres => {
                let schema = format!("steward_t_{}_{}", now_ms() / 1000, uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(db.pool()).await.unwrap();
                let base = crate::testing::postgres_base_url();
                let separator = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
                (Db::connect(&url, 2).await.unwrap(), None, Some(schema))
            }
        };
        let (old, _dir, schema) = fresh;
        let dialect = if old.backend() == Backend::Sqlite { "sqlite" } else { "postgres" };
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(dialect);
        let earlier = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&all).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().as_ref() < "0010" {
                std::fs::copy(entry.path(), earlier.path().join(entry.file_name())).unwrap();
            }
        }
        Migrator::new(earlier.path()).await.unwrap().run(old.pool()).await.unwrap();
        for (action, target, detail) in [
            ("login", "alice", "{}"),
            ("maintenance.on", "prod", "{}"),
            ("job.request", "7", r#"{"environment":"test","kind":"backup"}"#),
        ] {
            sqlx::query("INSERT INTO audit_event (at, actor, action, target, outcome, detail) VALUES ($1, 'alice', $2, $3, 'ok', $4)")
                .bind(now_ms()).bind(action).bind(target).bind(detail)
                .execute(old.pool()).await.unwrap();
        }

        old.migrate().await.unwrap();
        let environments: Vec<Option<String>> = sqlx::query_scalar("SELECT environment FROM audit_event ORDER BY id")
            .fetch_all(old.pool()).await.unwrap();
        assert_eq!(environments, [None, Some("prod".into()), Some("test".into())]);
        record(old.pool(), &event(0)).await.unwrap();
        let report = verify(&old).await.unwrap();
        assert_eq!((report.checked, report.problem), (4, None));
        assert_eq!(backfill(&old).await.unwrap(), 0, "once is enough");

        old.close().await;
        if let Some(schema) = schema {
            let mut admin = sqlx::AnyConnection::connect(&crate::testing::postgres_base_url()).await.unwrap();
            admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await.unwrap();
        }
    }
}

#[test]
fn the_canonical_form_is_documented_json() {
    let sealed = Sealed {
        id: 2,
        prev_id: 1,
        at: 1_700_000_000_000,
        actor: Some("alice".into()),
        client_ip: None,
        action: "login".into(),
        target: Some("alice".into()),
        environment: None,
        outcome: "ok".into(),
        detail: "{}".into(),
    };
    assert_eq!(
        sealed.canonical(),
        r#"[2,1,1700000000000,"alice",null,"login","alice",null,"ok","{}"]"#
    );
    // The same as `printf '%s%s' "$GENESIS" "$canonical" | sha256sum`.
    assert_eq!(sealed.hash(GENESIS), {
        let mut sha = Sha256::new();
        sha.update(format!("{GENESIS}{}", sealed.canonical()));
        hex::encode(sha.finalize())
    });
}
