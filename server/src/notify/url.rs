//! Webhook URLs: configuration, checked before the server starts.
//!
//! A receiver's URL often carries its secret (a Slack incoming-webhook URL is one), so logs name
//! a receiver by scheme, host and port only ([`WebhookUrl::shown`]), never by the full URL.

use std::fmt;

/// A checked `http://` or `https://` URL that notifications are POSTed to.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: reqwest::Url,
}

impl WebhookUrl {
    /// Parses `text`: an absolute `http://` or `https://` URL with a host and no
    /// `user:password@` part (credentials belong in the path or query the receiver issues, and
    /// userinfo would be echoed by some HTTP stacks).
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        let shown = ferry_proto::names::Shown(text);
        let url = reqwest::Url::parse(text).map_err(|e| {
            format!("invalid webhook URL {shown}: {e}; write http://HOST[:PORT]/PATH or https://…")
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!(
                "invalid webhook URL {shown}: scheme {:?} is not http or https; notifications are HTTP POSTs",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("invalid webhook URL {shown}: it names no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "invalid webhook URL {}: it carries user:password@; put the receiver's secret in its path or query instead",
                ferry_proto::names::Shown(&WebhookUrl { url: url.clone() }.shown())
            ));
        }
        Ok(WebhookUrl { url })
    }

    /// The URL to POST to.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// `https://hooks.example.com:443`: what logs may say of this receiver.
    pub fn shown(&self) -> String {
        let host = self.url.host_str().unwrap_or("");
        match self.url.port_or_known_default() {
            Some(port) => format!("{}://{host}:{port}", self.url.scheme()),
            None => format!("{}://{host}", self.url.scheme()),
        }
    }
}

// Debug is what `ServerConfig`'s Debug prints: keep the secret out of it too.
impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({}/…)", self.shown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_https_are_accepted_and_shown_without_their_path() {
        let u = WebhookUrl::parse("https://hooks.example.com/services/T0/B0/secret").unwrap();
        assert_eq!(u.shown(), "https://hooks.example.com:443");
        assert!(!format!("{u:?}").contains("secret"));
        let u = WebhookUrl::parse("http://127.0.0.1:8080/hook").unwrap();
        assert_eq!(u.url().path(), "/hook");
    }

    #[test]
    fn other_schemes_userinfo_and_garbage_are_refused_with_the_rule() {
        let e = WebhookUrl::parse("ftp://example.com/x").unwrap_err();
        assert!(e.contains("\"ftp\" is not http or https"), "{e}");
        let e = WebhookUrl::parse("hooks.example.com/x").unwrap_err();
        assert!(
            e.contains("invalid webhook URL \"hooks.example.com/x\""),
            "{e}"
        );
        let e = WebhookUrl::parse("https://me:pw@example.com/x").unwrap_err();
        assert!(e.contains("user:password@") && !e.contains("pw"), "{e}");
        assert!(WebhookUrl::parse("file:///etc/passwd").is_err());
    }
}
