//! One Subscribe stream: replay from the log, then live, with no gap and no duplicate.
//!
//! The order matters: subscribe to the live fan-out *first*, then replay the log, then drain the
//! live receiver dropping anything at or below the last seq sent. A subscriber that lags behind
//! the live buffer is switched back to replay rather than dropped.

use super::streams::StreamSlot;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::pb::{self, subscribe_response::Item};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::Instrument;

use super::{convert, ImageFilter};
use crate::service::{ClusterConnection, Event, Service};

/// Events replayed per store query: bounds memory per catching-up stream.
const REPLAY_PAGE: usize = 1000;
/// Per-stream send buffer. Small: the live buffer (shared) absorbs bursts, and a full channel
/// means a slow client, which replay handles.
const STREAM_BUFFER: usize = 64;

type Tx = mpsc::Sender<Result<pb::SubscribeResponse, Status>>;

/// The token a stream was opened with: its name (for logs), how to re-check it, and its place
/// in the token's stream count.
pub struct StreamToken {
    /// The token's name.
    pub name: String,
    /// Re-checks the token at every heartbeat.
    pub still_allowed: StillAllowed,
    /// Freed when the stream ends.
    pub slot: StreamSlot,
    /// Marks the stream's cluster connected until the stream ends (none for an observer).
    pub connection: Option<ClusterConnection>,
}

/// Starts the stream task and returns the client's end. The task runs in a `subscribe` span
/// naming the token and the cursor it started from, so every log line of the stream says whose
/// it is.
pub fn start(
    service: Arc<Service>,
    token: StreamToken,
    after_seq: u64,
    filter: ImageFilter,
    heartbeat: Duration,
    shutdown: watch::Receiver<bool>,
) -> ReceiverStream<Result<pb::SubscribeResponse, Status>> {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    let span = tracing::info_span!("subscribe", token = %token.name, after_seq);
    tokio::spawn(
        async move {
            let mut s = Subscriber {
                service,
                filter,
                tx,
                cursor: after_seq,
                still_allowed: token.still_allowed,
                _slot: token.slot,
                _connection: token.connection,
            };
            if let Err(Gone) = s.run(heartbeat, shutdown).await {
                tracing::debug!(cursor = s.cursor, "subscriber left");
            }
        }
        .instrument(span),
    );
    ReceiverStream::new(rx)
}

/// The client went away (its receiver was dropped).
struct Gone;

struct Subscriber {
    service: Arc<Service>,
    filter: ImageFilter,
    tx: Tx,
    /// The last seq this stream has accounted for (sent, or skipped by the filter).
    cursor: u64,
    still_allowed: StillAllowed,
    /// This stream's place in its token's count, freed when the stream ends.
    _slot: StreamSlot,
    /// Its cluster's connected mark, dropped when the stream ends.
    _connection: Option<ClusterConnection>,
}

/// Checked at every heartbeat (blocking: it reads the store): an error ends the stream with that
/// status, so a revoked token loses its open streams within one heartbeat.
pub type StillAllowed = Arc<dyn Fn() -> Result<(), Status> + Send + Sync>;

impl Subscriber {
    async fn send(&self, item: Item) -> Result<(), Gone> {
        self.tx
            .send(Ok(pb::SubscribeResponse { item: Some(item) }))
            .await
            .map_err(|_| Gone)
    }

    async fn send_event(&mut self, e: &Event) -> Result<(), Gone> {
        if e.seq <= self.cursor {
            return Ok(()); // already sent during replay
        }
        if self.filter.accepts(&e.image) {
            self.send(Item::Event(convert::event(e))).await?;
        }
        self.cursor = e.seq;
        Ok(())
    }

    async fn run(
        &mut self,
        heartbeat: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), Gone> {
        if *shutdown.borrow() {
            let _ = self
                .tx
                .send(Err(Status::unavailable("server shutting down")))
                .await;
            return Ok(());
        }
        let mut live = self.service.subscribe_live();
        self.snapshot_if_needed().await?;
        self.replay().await?;
        let mut tick = tokio::time::interval(heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                batch = live.recv() => match batch {
                    Ok(batch) => {
                        // A seq beyond cursor+1 means we missed something between replay and live
                        // (cannot happen with subscribe-before-replay, but the log is the truth).
                        if batch.first().is_some_and(|e| e.seq > self.cursor + 1) {
                            self.replay().await?;
                        }
                        for e in batch.iter() {
                            self.send_event(e).await?;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::info!(missed, cursor = self.cursor, "subscriber lagged; replaying from the log");
                        self.service.note_lag_replay();
                        self.replay().await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        let _ = self.tx.send(Err(Status::unavailable("server shutting down"))).await;
                        return Ok(());
                    }
                },
                _ = tick.tick() => {
                    let check = self.still_allowed.clone();
                    let allowed = tokio::task::spawn_blocking(move || check())
                        .await
                        .unwrap_or_else(|e| Err(Status::internal(format!("token check failed: {e}"))));
                    if let Err(status) = allowed {
                        let _ = self.tx.send(Err(status)).await;
                        return Ok(());
                    }
                    // The stream's own cursor, not the service's head: a publish may sit in the
                    // live receiver, not yet sent, and an agent that took the head as "applied
                    // up to" would move its durable cursor past events it has not seen. When the
                    // stream is idle the two are equal.
                    let head_seq = self.cursor;
                    self.send(Item::Heartbeat(pb::Heartbeat { head_seq })).await?;
                }
                _ = self.tx.closed() => return Err(Gone),
                // The sender only ever goes false → true, and dropping it means the server is gone.
                _ = shutdown.changed() => {
                    let _ = self.tx.send(Err(Status::unavailable("server shutting down"))).await;
                    return Ok(());
                }
            }
        }
    }

    /// Replays logged events after the cursor until the log is exhausted.
    async fn replay(&mut self) -> Result<(), Gone> {
        loop {
            let service = self.service.clone();
            let after = self.cursor;
            let page =
                tokio::task::spawn_blocking(move || service.replay(after, REPLAY_PAGE)).await;
            let events = match page {
                Ok(Ok(events)) => events,
                Ok(Err(e)) => {
                    let _ = self.tx.send(Err(super::status(e))).await;
                    return Err(Gone);
                }
                Err(e) => {
                    let _ = self
                        .tx
                        .send(Err(Status::internal(format!("replay failed: {e}"))))
                        .await;
                    return Err(Gone);
                }
            };
            let done = events.len() < REPLAY_PAGE;
            for e in &events {
                self.send_event(e).await?;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Sends the current tags first when the cursor is older than the retained log (or newer than
    /// the head: a server whose data was reset), then continues from the head.
    async fn snapshot_if_needed(&mut self) -> Result<(), Gone> {
        let head = self.service.head_seq();
        let oldest = {
            let service = self.service.clone();
            tokio::task::spawn_blocking(move || service.oldest_retained_seq())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
        };
        let too_old = self.cursor > 0 && oldest.is_some_and(|o| self.cursor + 1 < o);
        let too_new = self.cursor > head;
        if !(too_old || too_new) {
            return Ok(());
        }
        let (as_of_seq, tags) = self
            .service
            .current_tags(|image| self.filter.accepts(image));
        tracing::info!(
            cursor = self.cursor,
            as_of_seq,
            "cursor outside the retained log; sending a snapshot"
        );
        self.send(Item::Snapshot(pb::Snapshot {
            as_of_seq,
            tags: tags.into_iter().map(convert::tag_state).collect(),
        }))
        .await?;
        self.cursor = as_of_seq;
        Ok(())
    }
}
