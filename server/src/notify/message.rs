//! What a notification says, and the two bodies it is sent as: ferry's JSON
//! (`docs/notification.schema.json`) and a Slack-compatible `{"text", "blocks"}`.
//!
//! Every string in a notification came from a publisher, a promoter or an agent: JSON escaping
//! covers the JSON body, and the Slack body escapes `&`, `<` and `>` as Slack's mrkdwn asks, so a
//! label cannot turn into a mention or a link.

use std::collections::BTreeMap;

use serde::Serialize;

/// The `schema` field of every JSON body: receivers dispatch on it.
pub const SCHEMA: &str = "ferry.notification/v1";

/// The body format, as `--notify-format` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// ferry's JSON document (docs/notifications.md).
    #[default]
    Json,
    /// Slack's incoming-webhook body: `text` plus one section block.
    Slack,
}

/// One notification: an envelope and what happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Stable for one fact, the same on every retry: receivers de-duplicate on it.
    pub id: String,
    /// When it happened, RFC 3339 UTC.
    pub time: String,
    /// One line for people.
    pub summary: String,
    /// What happened, with its kind.
    #[serde(flatten)]
    pub what: What,
}

/// The facts of each kind (`kind` in the body).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// One publish moved tags of a release to a digest.
    ReleasePublished {
        /// The last event of the publish for this digest.
        seq: u64,
        /// Normalised image name.
        image: String,
        /// The tags that moved to `digest`.
        tags: Vec<String>,
        /// The manifest digest.
        digest: String,
        /// `org.opencontainers.image.version`, or empty.
        version: String,
        /// The release's labels.
        labels: BTreeMap<String, String>,
    },
    /// A ring pointer moved.
    RingMoved {
        /// The RING_MOVED event.
        seq: u64,
        /// The pipeline.
        pipeline: String,
        /// The ring.
        ring: String,
        /// The image.
        image: String,
        /// Where it points now; empty when emptied.
        digest: String,
        /// Where it pointed before; empty when it was empty.
        previous_digest: String,
        /// A tag of `digest`, or empty.
        tag: String,
        /// The version label of `digest`, or empty.
        version: String,
        /// A token name, or `ferry-server` for autoPromote.
        actor: String,
        /// promote, shift, unshift, rollback, publish, auto, or the operator's text.
        reason: String,
        /// Moved with --force.
        forced: bool,
    },
    /// A gate that was closed for a candidate is now open.
    GateOpened {
        /// The pipeline.
        pipeline: String,
        /// The ring the gate guards.
        ring: String,
        /// The image whose digest may now enter.
        image: String,
        /// That digest (what the ring before runs).
        digest: String,
    },
    /// A target an agent reports started failing.
    TargetFailing {
        /// The cluster.
        cluster: String,
        /// The target key.
        target: String,
        /// Its image.
        image: String,
        /// The pipeline of its ring, or empty.
        pipeline: String,
        /// The ring it follows, or empty.
        ring: String,
        /// The file it writes.
        file: String,
        /// The agent's error text.
        error: String,
    },
    /// A cluster that held a stream has held none for `disconnected_seconds`.
    AgentDisconnected {
        /// The cluster.
        cluster: String,
        /// How long it has been gone (at least `--notify-disconnect-after`).
        disconnected_seconds: u64,
        /// Its last report, RFC 3339, or null when it never reported.
        last_report: Option<String>,
    },
}

impl What {
    /// The `kind` value, for logs and the `X-Ferry-Event` header.
    pub fn kind(&self) -> &'static str {
        match self {
            What::ReleasePublished { .. } => "release_published",
            What::RingMoved { .. } => "ring_moved",
            What::GateOpened { .. } => "gate_opened",
            What::TargetFailing { .. } => "target_failing",
            What::AgentDisconnected { .. } => "agent_disconnected",
        }
    }
}

impl Notification {
    /// A notification of `what` at `time_ms`, with its id and summary.
    pub fn new(id: String, time_ms: i64, what: What) -> Notification {
        Notification {
            schema: SCHEMA,
            id,
            time: ferry_proto::time::rfc3339_ms(time_ms),
            summary: summary(&what),
            what,
        }
    }

    /// The request body in `format`.
    pub fn body(&self, format: Format) -> Vec<u8> {
        let value = match format {
            Format::Json => serde_json::to_value(self),
            Format::Slack => Ok(self.slack()),
        };
        serde_json::to_vec(&value.expect("a notification is plain data")).expect("JSON")
    }

    fn slack(&self) -> serde_json::Value {
        let text = slack_escape(&self.summary);
        serde_json::json!({
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*ferry · {}*\n{text}", self.what.kind())}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(&format!("{} · {}", self.time, self.id))}]},
            ],
        })
    }
}

/// Slack's mrkdwn control characters, escaped as Slack documents (`&amp;`, `&lt;`, `&gt;`).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn short(digest: &str) -> &str {
    if digest.is_empty() {
        "nothing"
    } else {
        ferry_proto::versioning::short_digest(digest)
    }
}

fn version_note(version: &str) -> String {
    if version.is_empty() {
        String::new()
    } else {
        format!(" ({version})")
    }
}

fn summary(what: &What) -> String {
    match what {
        What::ReleasePublished {
            image,
            tags,
            digest,
            version,
            ..
        } => format!(
            "published {image}:{}{} → {}",
            tags.join(","),
            version_note(version),
            short(digest)
        ),
        What::RingMoved {
            pipeline,
            ring,
            image,
            digest,
            version,
            actor,
            reason,
            forced,
            ..
        } => format!(
            "{pipeline}/{ring}: {image} → {}{} by {actor} ({reason}{})",
            short(digest),
            version_note(version),
            if *forced { ", forced" } else { "" }
        ),
        What::GateOpened {
            pipeline,
            ring,
            image,
            digest,
        } => format!("{pipeline}/{ring}: gate open for {image} {}", short(digest)),
        What::TargetFailing {
            cluster,
            target,
            error,
            ..
        } => format!("cluster {cluster}: target {target} fails: {error}"),
        What::AgentDisconnected {
            cluster,
            disconnected_seconds,
            ..
        } => format!(
            "cluster {cluster} disconnected for {}",
            crate::service::gates::duration_text(*disconnected_seconds)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(error: &str) -> Notification {
        Notification::new(
            "target_failing:eu-1:t1:1".into(),
            0,
            What::TargetFailing {
                cluster: "eu-1".into(),
                target: "t1".into(),
                image: "x.io/app".into(),
                pipeline: String::new(),
                ring: String::new(),
                file: "app.yaml".into(),
                error: error.into(),
            },
        )
    }

    #[test]
    fn json_body_is_the_envelope_with_the_kind_and_its_fields_at_the_top() {
        let v: serde_json::Value =
            serde_json::from_slice(&failing("boom").body(Format::Json)).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["kind"], "target_failing");
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["error"], "boom");
        assert_eq!(v["summary"], "cluster eu-1: target t1 fails: boom");
    }

    #[test]
    fn slack_body_escapes_mrkdwn_so_a_hostile_error_cannot_mention_or_link() {
        let body = failing("<!channel> <https://evil|click> & co").body(Format::Slack);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(
            text.contains("&lt;!channel&gt;") && text.contains("&amp; co"),
            "{text}"
        );
        assert_eq!(v["blocks"][0]["type"], "section");
    }
}
