//! Error chains on one line, each cause once.
//!
//! Many errors print their source in their own message (`cannot reach X: transport error`) and
//! also return it from `source()`, so printing the chain with `{:#}` says the same cause twice
//! (`cannot reach X: transport error: transport error`). The agent prints chains with
//! [`one_line`], which leaves out a cause whose text the message already holds.

/// `error` and its causes, `: `-separated, without repeating a cause already said.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("transport error")]
    struct Transport(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach ferry-server at {address}: {source}")]
    struct Unreachable {
        address: String,
        source: Transport,
    }

    // Regression (issue 9): the agent logged `cannot reach …: transport error: transport error`.
    #[test]
    fn a_cause_the_message_already_holds_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = anyhow::Error::new(Unreachable {
            address: "http://127.0.0.1:1".into(),
            source: Transport(io),
        })
        .context("connecting to provider ferry");
        assert_eq!(
            one_line(&e),
            "connecting to provider ferry: cannot reach ferry-server at http://127.0.0.1:1: transport error: connection refused"
        );
        assert!(format!("{e:#}").contains("transport error: transport error"));
    }
}
