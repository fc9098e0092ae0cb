//! `ferry publish`: read the image once, send one Publish call, return the digest.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use ferry_proto::client::{error_chain, explanation, from_transport};
use ferry_proto::pb;
use ferry_proto::reference::{ImageName, Reference};

use crate::source::{self, registry::Credentials, Source};
use crate::PublishArgs;

/// Publishes per `args`; returns the manifest digest and the ring pointers `--to` moved.
pub async fn publish(
    args: &PublishArgs,
    labels: BTreeMap<String, String>,
) -> anyhow::Result<(String, Vec<pb::RingMove>)> {
    let creds = args.creds.as_deref().map(Credentials::parse).transpose()?;
    let mut tags: Vec<String> = Vec::new();
    let (image, fetched, origin) = match Source::parse(&args.source)? {
        Source::Docker(reference) => {
            tags.extend(reference.tag.clone());
            let (fetched, origin) =
                source::registry::read(&reference, creds, args.insecure).await?;
            let image = args
                .image
                .clone()
                .unwrap_or_else(|| reference.name.to_string());
            (image, fetched, Some(origin))
        }
        Source::OciLayout { dir, tag } => {
            let Some(image) = args.image.clone() else {
                bail!("an oci: source needs --image NAME: the image name clusters pull it as (e.g. gcr.io/team/app)");
            };
            let (fetched, found_tag) = source::oci_layout::read(&dir, tag.as_deref()).await?;
            tags.extend(found_tag);
            let origin = match &args.origin {
                Some(o) => {
                    let r = Reference::parse(o.strip_prefix("docker://").unwrap_or(o))
                        .with_context(|| format!("--origin {o:?}"))?;
                    Some(pb::Origin {
                        registry_url: source::registry::base_url(r.name.registry(), args.insecure),
                        repository: r.name.path().to_string(),
                    })
                }
                None => None,
            };
            (image, fetched, origin)
        }
    };
    ImageName::parse(&image).with_context(|| format!("--image {image:?}"))?;
    for t in &args.tags {
        ferry_proto::names::validate_tag(t).with_context(|| "--tag")?;
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let request = pb::PublishRequest {
        image,
        manifest: Some(fetched.manifest),
        children: fetched.children,
        blobs: fetched.blobs,
        tags,
        labels: labels.into_iter().collect(),
        origin,
        to_ring: args.to_ring.clone().unwrap_or_default(),
        pipeline: args.pipeline.clone().unwrap_or_default(),
    };
    let mut client = args.conn.connect().await?;
    let resp = match client.publish(request).await {
        Ok(resp) => resp.into_inner(),
        Err(status) => return Err(publish_failed(&args.conn.server, status)),
    };
    for m in &resp.moved {
        tracing::info!(tag = %m.tag, digest = %m.digest, seq = m.seq, "tag moved");
    }
    Ok((resp.digest, resp.ring_moves))
}

/// A failed Publish call (and any other call: [`crate::rings`] words its refusals the same way). A status ferry-server sent is its refusal, said as it is; a failure
/// on this side is said as such, or, when the channel found that the address does not speak
/// gRPC (e.g. the registry port), as that explanation alone.
pub(crate) fn publish_failed(server: &str, status: tonic::Status) -> anyhow::Error {
    call_failed(server, "publish", status)
}

/// A failed call named `what` ("publish", "promote"): the server's refusal as it is, or what
/// failed on this side.
pub(crate) fn call_failed(server: &str, what: &str, status: tonic::Status) -> anyhow::Error {
    if let Some(why) = explanation(&status) {
        return anyhow!("{why}");
    }
    if from_transport(&status) {
        let reason = std::error::Error::source(&status)
            .map(error_chain)
            .unwrap_or_else(|| status.message().to_string());
        if what == "publish" {
            return anyhow!("publishing to ferry-server at {server} failed: {reason}");
        }
        return anyhow!("calling ferry-server at {server} ({what}) failed: {reason}");
    }
    anyhow!("ferry-server refused the {what}: {}", status.message())
}
