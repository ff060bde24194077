use leptos::prelude::*;

use crate::error::AppError;

/// Signs in. Open to everyone who passed the allowlist; throttled by username and address.
/// On success the session gets a new id and the browser is sent to `next` (a local path).
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(username: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use engine::accounts::LoginError;

    let engine = crate::api::engine()?;
    let session = crate::api::guard::session().await?;
    let client_ip = crate::api::guard::client_ip()
        .await
        .unwrap_or_else(|| "unknown".to_string());
    let username = username.trim();
    if username.is_empty() || password.is_empty() {
        return Err(AppError::invalid("username", "Enter your username and password."));
    }
    match engine.login(username, &password, &client_ip).await {
        Ok(user) => {
            crate::api::guard::sign_in(&session, &user).await?;
            crate::api::guard::redirect_plain_form(&safe_next(next.as_deref())).await;
            Ok(())
        }
        Err(LoginError::Internal(e)) => Err(e.into()),
        Err(refused @ LoginError::Invalid) => Err(AppError::SignInRefused {
            message: refused.to_string(),
        }),
        Err(refused @ (LoginError::Locked { .. } | LoginError::Throttled { .. })) => Err(AppError::TooManyAttempts {
            message: refused.to_string(),
        }),
    }
}

/// Only local paths: a sign-in link must not send people to another site. Used by the server
/// (plain form posts) and by the sign-in page (after a hydrated sign-in).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path.to_string(),
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/environments?q=x")), "/environments?q=x");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
