//! `ferry events`: the event log as a table, like `kubectl get events`, read through the same
//! Subscribe stream agents use (as an observer, so the reader never shows as a connected
//! cluster).
//!
//! Without `--follow` it reads up to the head the server reported when the command started and
//! exits; with it, it keeps printing new events until interrupted. Every value came from a
//! publisher, promoter or agent: cells go through [`print::cell`], which quotes and cuts a value
//! with control characters, so a label cannot rewrite the terminal.

use std::io::Write;

use anyhow::Context;
use ferry_proto::pb::{self, subscribe_response::Item};

use crate::publish::call_failed;
use crate::rings::print;
use crate::ServerArgs;

/// `ferry events`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Columns: SEQ (the event's place in the log), AGE (or TIME with --time), KIND (TagMoved,
RingMoved, PipelineApplied), IMAGE, TAG/RING (the tag, or PIPELINE/RING), DIGEST (short),
ACTOR (who moved a ring) and REASON (promote, shift, rollback, auto, or the operator's text).

Subscribe needs a token with role agent (the bootstrap token has it).")]
pub struct EventsArgs {
    /// Keep printing new events as they happen (until interrupted).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only events of this image (repeatable; normalised like `docker pull` names).
    #[arg(long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Start after this seq (0: the whole log).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub since_seq: u64,
    /// Print at most N events, then exit (with --follow too).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Show each event's UTC time instead of its age.
    #[arg(long)]
    pub time: bool,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

const HEADER: [&str; 8] = [
    "SEQ", "AGE", "KIND", "IMAGE", "TAG/RING", "DIGEST", "ACTOR", "REASON",
];

/// Runs `ferry events`, writing the table to `out` as events arrive.
pub async fn run(args: &EventsArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let mut client = args.conn.connect().await?;
    let server = &args.conn.server;
    let head = client
        .list_tags(pb::ListTagsRequest {
            images: args.images.clone(),
        })
        .await
        .map_err(|s| call_failed(server, "events", s))?
        .into_inner()
        .head_seq;
    let mut header = HEADER;
    if args.time {
        header[1] = "TIME";
    }
    let now = now_ms();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut printed: u64 = 0;
    let limit = args.limit.unwrap_or(u64::MAX);
    let done = |printed: u64| printed >= limit;
    if (args.since_seq < head || args.follow) && limit > 0 {
        let mut stream = client
            .subscribe(pb::SubscribeRequest {
                after_seq: args.since_seq,
                images: args.images.clone(),
                cluster: String::new(),
                observer: true,
            })
            .await
            .map_err(|s| call_failed(server, "events", s))?
            .into_inner();
        // Up to the head: gathered, so the table's columns fit every row.
        let mut live = false;
        while !live {
            let Some(msg) = stream
                .message()
                .await
                .map_err(|s| call_failed(server, "events", s))?
            else {
                break;
            };
            match msg.item {
                Some(Item::Event(e)) => {
                    rows.push(row(&e, args.time, now));
                    printed += 1;
                    live = e.seq >= head || done(printed);
                }
                Some(Item::Heartbeat(h)) => live = h.head_seq >= head,
                Some(Item::Snapshot(_)) | None => {}
            }
        }
        let widths = widths(&header, &rows);
        write!(out, "{}", line(&widths, &header.map(String::from)))?;
        for r in &rows {
            write!(out, "{}", line(&widths, r))?;
        }
        out.flush()?;
        if args.follow && !done(printed) {
            while let Some(msg) = stream
                .message()
                .await
                .map_err(|s| call_failed(server, "events", s))?
            {
                if let Some(Item::Event(e)) = msg.item {
                    write!(out, "{}", line(&widths, &row(&e, args.time, now_ms())))?;
                    out.flush().context("writing to stdout")?;
                    printed += 1;
                    if done(printed) {
                        break;
                    }
                }
            }
        }
        return Ok(());
    }
    write!(
        out,
        "{}",
        line(&widths(&header, &[]), &header.map(String::from))
    )?;
    Ok(())
}

/// One event as table cells.
pub fn row(e: &pb::Event, absolute: bool, now_ms: i64) -> Vec<String> {
    let kind = match pb::EventKind::try_from(e.kind) {
        Ok(pb::EventKind::TagMoved) => "TagMoved",
        Ok(pb::EventKind::TagDeleted) => "TagDeleted",
        Ok(pb::EventKind::RingMoved) => "RingMoved",
        Ok(pb::EventKind::PipelineApplied) => "PipelineApplied",
        _ => "Unknown",
    };
    let what = if e.ring.is_empty() && e.pipeline.is_empty() {
        print::cell(&e.tag)
    } else if e.ring.is_empty() {
        print::cell(&e.pipeline)
    } else {
        print::cell(&format!("{}/{}", e.pipeline, e.ring))
    };
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            print::cell(s)
        }
    };
    vec![
        e.seq.to_string(),
        if absolute {
            print::when(e.published_at_ms)
        } else {
            age(now_ms - e.published_at_ms)
        },
        kind.to_string(),
        dash(&e.image),
        dash(&what),
        print::digest(&e.digest),
        dash(&e.actor),
        dash(&e.reason),
    ]
}

/// An age as kubectl writes it: `42s`, `5m`, `3h`, `2d`.
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    w
}

/// Cells padded to `widths`, two spaces apart, no trailing blanks; a later (followed) row wider
/// than the first screen's widths pushes its line, as kubectl's watch output does.
fn line(widths: &[usize], cells: &[String]) -> String {
    let mut s = String::new();
    for (i, c) in cells.iter().enumerate() {
        s.push_str(c);
        if i + 1 < cells.len() {
            let pad = widths[i].saturating_sub(c.chars().count()) + 2;
            s.push_str(&" ".repeat(pad));
        }
    }
    s.push('\n');
    s
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_or_reason_with_control_characters_is_quoted_not_sent_raw() {
        let e = pb::Event {
            seq: 3,
            kind: pb::EventKind::RingMoved as i32,
            image: "x.io/app".into(),
            pipeline: "shop".into(),
            ring: "prod".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            actor: "alice".into(),
            reason: "hotfix\u{1b}[2J\r\n".into(),
            published_at_ms: 1_000,
            ..Default::default()
        };
        let r = row(&e, false, 62_000);
        assert_eq!(
            r[..7],
            [
                "3",
                "1m",
                "RingMoved",
                "x.io/app",
                "shop/prod",
                "sha256:aaaaaaaaaaaa",
                "alice"
            ]
        );
        assert_eq!(r[7], "\"hotfix\\u{1b}[2J\\r\\n\"");
        assert!(!line(&widths(&HEADER, std::slice::from_ref(&r)), &r).contains('\u{1b}'));
    }

    #[test]
    fn ages_are_written_like_kubectl() {
        assert_eq!(
            [
                age(5_000),
                age(300_000),
                age(7_200_000),
                age(200_000_000),
                age(-5)
            ],
            ["5s", "5m", "2h", "2d", "0s"]
        );
    }
}
