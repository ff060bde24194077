use serde::{Deserialize, Serialize};

/// An environment as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentSummary {
    pub name: String,
    pub label: String,
    /// `#rrggbb`, validated when the configuration is loaded.
    pub colour: String,
    pub production: bool,
}

impl EnvironmentSummary {
    /// Whether a filter text typed by the user matches the name or the label.
    pub fn matches(&self, filter: &str) -> bool {
        let filter = filter.trim().to_lowercase();
        filter.is_empty() || self.name.contains(&filter) || self.label.to_lowercase().contains(&filter)
    }
}

#[cfg(feature = "ssr")]
impl From<&engine::config::Environment> for EnvironmentSummary {
    fn from(env: &engine::config::Environment) -> Self {
        EnvironmentSummary {
            name: env.name.clone(),
            label: env.label.clone(),
            colour: env.colour.clone(),
            production: env.production,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_matches_name_or_label_ignoring_case_and_spaces() {
        let prod = EnvironmentSummary {
            name: "prod".into(),
            label: "Production EU".into(),
            colour: "#c62828".into(),
            production: true,
        };
        assert!(prod.matches(""));
        assert!(prod.matches(" PROD "));
        assert!(prod.matches("eu"));
        assert!(!prod.matches("dev"));
    }
}
