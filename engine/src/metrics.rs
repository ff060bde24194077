// TEMPORARY stand-in until helper branch merges: do not commit
pub fn notification_delivery(_target: &str, _ok: bool) {}
