//! Notifications: the targets and rules (admins), a test per target (admins), the delivery
//! history (admins), and an environment's recent alerts (everyone signed in).

mod list_notifications;
mod notification_settings;
mod recent_alerts;
mod send_test_notification;

pub use list_notifications::*;
pub use notification_settings::*;
pub use recent_alerts::*;
pub use send_test_notification::*;
