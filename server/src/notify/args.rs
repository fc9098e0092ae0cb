//! The `--notify-*` flags, flattened into `ferry-server`'s arguments, and their checks.

use std::time::Duration;

use super::message::Format;
use super::outbox::Delivery;
use super::url::WebhookUrl;
use super::NotifyConfig;

/// Notification flags.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// POST a notification to URL (http:// or https://; repeatable) for each release published,
    /// ring moved, gate opened, target an agent reports failing, and cluster disconnected longer
    /// than --notify-disconnect-after. Body: docs/notifications.md. A slow or dead receiver
    /// never slows a publish: each has a bounded queue, and what does not fit is dropped and
    /// logged. Logs name a receiver by scheme, host and port only.
    #[arg(long = "notify-url", value_name = "URL")]
    pub urls: Vec<String>,
    /// The body: json (ferry's schema, docs/notification.schema.json) or slack (an
    /// incoming-webhook `{"text", "blocks"}`).
    #[arg(long, value_enum, default_value = "json")]
    pub notify_format: Format,
    /// Announce a cluster whose agent has held no event stream this long (90s, 5m, 1h), once
    /// per disconnection; only clusters seen connected since the server started.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub notify_disconnect_after: String,
    /// Longest one delivery attempt may take (connect, send, answer), e.g. 10s.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub notify_timeout: String,
    /// Attempts per notification, the first included; the wait between them starts at 1 s and
    /// doubles.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub notify_attempts: u32,
    /// Notifications that may wait per receiver; more are dropped (and logged).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub notify_queue: usize,
}

impl NotifyArgs {
    /// Checks the flags into a [`NotifyConfig`].
    pub fn config(&self) -> anyhow::Result<NotifyConfig> {
        let urls = self
            .urls
            .iter()
            .map(|u| WebhookUrl::parse(u).map_err(|e| anyhow::anyhow!("--notify-url: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let seconds = |flag: &str, text: &str| -> anyhow::Result<Duration> {
            let secs = ferry_proto::pipeline::parse_duration(text)
                .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
            if secs == 0 {
                anyhow::bail!("{flag} {text}: must be at least 1s");
            }
            Ok(Duration::from_secs(secs))
        };
        if self.notify_attempts == 0 || self.notify_attempts > 20 {
            anyhow::bail!(
                "--notify-attempts {}: must be 1 to 20 (retries are bounded)",
                self.notify_attempts
            );
        }
        if self.notify_queue == 0 {
            anyhow::bail!("--notify-queue 0: a receiver needs room for at least 1 notification");
        }
        Ok(NotifyConfig {
            urls,
            disconnect_after: seconds("--notify-disconnect-after", &self.notify_disconnect_after)?,
            delivery: Delivery {
                format: self.notify_format,
                queue: self.notify_queue,
                timeout: seconds("--notify-timeout", &self.notify_timeout)?,
                attempts: self.notify_attempts,
                ..Delivery::default()
            },
        })
    }
}
