//! `steward demo init DIR`: sample content for the demo environment of steward.example.toml
//! (a small web site and its shop database), so a new user can back up and restore at once.

use std::path::Path;

use anyhow::Context as _;
use clap::Subcommand;
use sqlx::Connection;

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Create the demo environment's sample content in DIR (a site directory and a SQLite
    /// database); leaves DIR alone if it already has content.
    Init {
        /// Where, e.g. `data/demo-shop` (the paths of the demo environment's resources).
        dir: std::path::PathBuf,
    },
}

pub(super) async fn demo(command: DemoCommand) -> anyhow::Result<()> {
    match command {
        DemoCommand::Init { dir } => init(&dir).await,
    }
}

const PAGES: [(&str, &str); 5] = [
    (
        "index.html",
        "<h1>Demo shop</h1>\n<p>Hand-made teapots since 1998.</p>\n",
    ),
    ("about.html", "<h1>About us</h1>\n<p>A family business.</p>\n"),
    (
        "products/teapot-blue.html",
        "<h1>Blue teapot</h1>\n<p>1.2 litres, glazed.</p>\n",
    ),
    (
        "products/teapot-green.html",
        "<h1>Green teapot</h1>\n<p>0.8 litres, matte.</p>\n",
    ),
    ("config/app.toml", "[shop]\ncurrency = \"EUR\"\norders_per_page = 25\n"),
];

async fn init(dir: &Path) -> anyhow::Result<()> {
    let site = dir.join("site");
    let database = dir.join("shop.sqlite");
    if tokio::fs::try_exists(&site).await? || tokio::fs::try_exists(&database).await? {
        println!("{} already has demo content; left as it is.", dir.display());
        return Ok(());
    }
    for (file, text) in PAGES {
        let path = site.join(file);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        tokio::fs::write(&path, text)
            .await
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tokio::fs::create_dir_all(site.join("uploads/empty")).await?;
    tokio::fs::symlink("products/teapot-blue.html", site.join("featured.html")).await?;

    let url = format!("sqlite://{}?mode=rwc", database.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .with_context(|| format!("creating {}", database.display()))?;
    sqlx::query(
        "CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL);
         CREATE TABLE customer_order (id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL REFERENCES product (id),
             quantity INTEGER NOT NULL, placed_at TEXT NOT NULL);
         INSERT INTO product (name, price_cents) VALUES ('Blue teapot', 4900), ('Green teapot', 4500),
             ('Tea cup', 1200), ('Saucer', 800);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO customer_order (product_id, quantity, placed_at)
             SELECT 1 + i % 4, 1 + i % 3, date('2026-01-01', '+' || (i % 300) || ' days') FROM n;",
    )
    .execute(&mut conn)
    .await
    .with_context(|| format!("filling {}", database.display()))?;
    conn.close().await?;
    println!(
        "Created the demo shop in {}: a site of {} files and a database of 4 products and 500 orders.",
        dir.display(),
        PAGES.len() + 1
    );
    Ok(())
}
