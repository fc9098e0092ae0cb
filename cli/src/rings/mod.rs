//! The pipeline and ring verbs (docs/rings.md): flags, one gRPC call each, and what they print.
//!
//! - [`print`]: every line these verbs print.
//! - [`pick`]: which pipeline and ring pointers `version next` and `needs-build` compare.

pub mod pick;
pub mod print;

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use ferry_proto::pb;
use ferry_proto::reference::Reference;
use ferry_proto::versioning::{self, BuildInputs};

use crate::publish::call_failed;
use crate::{Command, Outcome, ServerArgs};

/// `ferry pipeline …`.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Create or replace a pipeline from a file (role promoter). Refusals name FILE:LINE:COL;
    /// nothing is stored on error. Pointers of rings and images that remain are kept.
    Apply(ApplyArgs),
    /// Every pipeline: name, generation, rings, images.
    List(ListArgs),
    /// A table of ring × image → version, digest, since, clusters running it.
    Show(ShowArgs),
}

/// `ferry pipeline apply`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
A pipeline file:

  apiVersion: ferry.dev/v1
  kind: Pipeline
  metadata: {name: shop}
  spec:
    rings: [developers, testers, users]        # 1-16 names; ante and post are ferry's own
    images: [registry.example.com/shop/api, registry.example.com/shop/web]
    root: registry.example.com/shop/api        # optional: promoting it moves its bundle
    gates:
      users: {requireApplied: true, soak: 10m, autoPromote: false}

Unknown fields are refused; soak is a duration such as 90s, 10m or 1h30m.")]
pub struct ApplyArgs {
    /// The pipeline file (apiVersion: ferry.dev/v1, kind: Pipeline).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry pipeline list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry pipeline show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The pipeline's name (or an image: every pipeline listing it).
    pub name: String,
    /// Also print every pointer's history (seq, previous → new digest, actor, reason).
    #[arg(long)]
    pub history: bool,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry promote`.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// IMAGE (what the previous ring runs), IMAGE:TAG or IMAGE@sha256:… .
    #[arg(value_name = "IMAGE[:TAG|@DIGEST]")]
    pub image: String,
    /// The ring to move (not ante or post).
    #[arg(long = "to", value_name = "RING")]
    pub to: String,
    /// The pipeline, when the image is in several.
    #[arg(long, value_name = "PIPELINE")]
    pub pipeline: Option<String>,
    /// Skip the order rule and a closed gate (never a rejection); recorded with --reason.
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why (recorded with the move; required with --force).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry shift`.
#[derive(Debug, clap::Args)]
pub struct ShiftArgs {
    /// The pipeline: every ring takes what the ring before it runs (last → post first, ante →
    /// first ring last); ante keeps its digests.
    pub pipeline: String,
    /// Skip closed gates (never a rejection); recorded with --reason.
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why (required with --force).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry unshift`.
#[derive(Debug, clap::Args)]
pub struct UnshiftArgs {
    /// The pipeline whose last shift to undo (refused when its last move was not a shift).
    pub pipeline: String,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The image (a root image rolls back every pointer its last move in the ring moved).
    pub image: String,
    /// The ring to move back to its previous digest; it is then held (no autoPromote) until
    /// someone promotes into it.
    #[arg(long, value_name = "RING")]
    pub ring: String,
    /// The pipeline, when the image is in several.
    #[arg(long, value_name = "PIPELINE")]
    pub pipeline: Option<String>,
    /// Why (recorded with the move and the hold).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry reject`.
#[derive(Debug, clap::Args)]
pub struct RejectArgs {
    /// IMAGE@sha256:… : a published release of the image. Nothing moves; the digest can never
    /// enter a ring again, and rings running it are flagged by ferry status.
    #[arg(value_name = "IMAGE@DIGEST")]
    pub reference: String,
    /// Why (required; shown by ferry status).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A pipeline name, or an image (its rows in every pipeline listing it).
    #[arg(value_name = "IMAGE|PIPELINE")]
    pub target: String,
    /// Every target's latest report, not only the failing ones (large with many clusters).
    #[arg(long)]
    pub targets: bool,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry version …`.
#[derive(Debug, Subcommand)]
pub enum VersionCommand {
    /// Print the version for a build made against RING, from the
    /// org.opencontainers.image.version labels of what RING and the ring after it run
    /// (docs/rings.md, "Versioning"), and why on stderr.
    Next(VersionNextArgs),
}

/// `ferry version next`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples (this ring / the ring after it -> next version):
  1.2.3 / 1.2.0 -> 1.3.0     same minor: a new minor
  1.3.0 / 1.2.5 -> 1.3.1     the next ring is on an older minor: a fix
  1.2.3 / empty -> 1.2.4     nothing to compare: a fix
  empty / 1.4.2 -> 1.5.0     build on the next ring's version
  1.3.0-rc.1 / any -> 1.3.0-rc.2
A leading v is kept; build metadata (+...) is dropped. Only the version goes to stdout:
  VERSION=$(ferry version next registry.example.com/shop/api --ring testers)")]
pub struct VersionNextArgs {
    /// The image, as pulled (registry.example.com/shop/api).
    pub image: String,
    /// The ring the build is made against (ante, a ring, post).
    #[arg(long, value_name = "RING")]
    pub ring: String,
    /// A new major version (X+1.0.0).
    #[arg(long)]
    pub major: bool,
    /// The pipeline, when the image is in several.
    #[arg(long, value_name = "PIPELINE")]
    pub pipeline: Option<String>,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

/// `ferry needs-build`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status: 0 = build needed (the ring is empty, or runs another revision or another version of
a --dependency), 1 = no build needed, 2 = error. The reason is printed either way:
  if ferry needs-build registry.example.com/shop/api --ring testers --revision \"$GIT_SHA\"; then
    make image
  fi")]
pub struct NeedsBuildArgs {
    /// The image, as pulled (registry.example.com/shop/api).
    pub image: String,
    /// The ring to compare with (ante, a ring, post).
    #[arg(long, value_name = "RING")]
    pub ring: String,
    /// The source revision the build would be made from (a git hash matches by a prefix of at
    /// least 7 hex digits) against org.opencontainers.image.revision.
    #[arg(long, value_name = "HASH")]
    pub revision: String,
    /// A dependency the build would pin, against the digest's dependency.NAME label
    /// (repeatable).
    #[arg(long = "dependency", value_name = "NAME=VERSION", value_parser = parse_dependency)]
    pub dependencies: Vec<(String, String)>,
    /// The pipeline, when the image is in several.
    #[arg(long, value_name = "PIPELINE")]
    pub pipeline: Option<String>,
    /// Where ferry-server is.
    #[command(flatten)]
    pub conn: ServerArgs,
}

fn parse_dependency(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "dependency {s:?} must be NAME=VERSION with both parts non-empty"
        )),
    }
}

/// Splits `IMAGE[:TAG|@DIGEST]` into the image and PromoteRequest's reference (`""`, `":tag"`,
/// `"@sha256:…"`).
pub fn split_reference(arg: &str) -> anyhow::Result<(String, String)> {
    let r = Reference::parse(arg).with_context(|| format!("image {}", print::cell(arg)))?;
    let reference = match (&r.tag, &r.digest) {
        (Some(_), Some(_)) => bail!(
            "{} has both a tag and a digest: give IMAGE:TAG or IMAGE@DIGEST",
            print::cell(arg)
        ),
        (Some(t), None) => format!(":{t}"),
        (None, Some(d)) => format!("@{d}"),
        (None, None) => String::new(),
    };
    Ok((r.name.to_string(), reference))
}

fn printed(text: String) -> Outcome {
    Outcome::Printed {
        text,
        note: String::new(),
        code: 0,
    }
}

/// Runs a ring verb (every [`Command`] but `publish`).
pub async fn run(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Publish(_) | Command::Events(_) => {
            unreachable!("publish and events are run by crate::run")
        }
        Command::Pipeline(PipelineCommand::Apply(a)) => {
            let name = a.file.display().to_string();
            let text =
                std::fs::read_to_string(&a.file).with_context(|| format!("reading {name}"))?;
            let file =
                crate::pipeline_file::parse(&text, &name).map_err(|d| anyhow::anyhow!("{d}"))?;
            let mut client = a.conn.connect().await?;
            let resp = client
                .apply_pipeline(pb::ApplyPipelineRequest {
                    spec: Some(file.spec),
                    source: file.source,
                })
                .await
                .map_err(|s| call_failed(&a.conn.server, "pipeline apply", s))?
                .into_inner();
            Ok(printed(print::applied(&resp)))
        }
        Command::Pipeline(PipelineCommand::List(a)) => {
            let mut client = a.conn.connect().await?;
            let resp = client
                .list_pipelines(pb::ListPipelinesRequest {})
                .await
                .map_err(|s| call_failed(&a.conn.server, "pipeline list", s))?
                .into_inner();
            Ok(printed(print::pipelines(&resp.pipelines)))
        }
        Command::Pipeline(PipelineCommand::Show(a)) => {
            let status = get(&a.conn, &a.name, a.history, false).await?;
            Ok(printed(print::show(&status, a.history)))
        }
        Command::Status(a) => {
            let status = get(&a.conn, &a.target, false, a.targets).await?;
            let image = pick::image_filter(&status, &a.target);
            Ok(printed(print::status(&status, image.as_deref(), a.targets)))
        }
        Command::Promote(a) => {
            let (image, reference) = split_reference(&a.image)?;
            let mut client = a.conn.connect().await?;
            let resp = client
                .promote(pb::PromoteRequest {
                    image: image.clone(),
                    reference: reference.clone(),
                    to_ring: a.to.clone(),
                    pipeline: a.pipeline.clone().unwrap_or_default(),
                    force: a.force,
                    reason: a.reason.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| call_failed(&a.conn.server, "promote", s))?
                .into_inner();
            let asked = if reference.is_empty() {
                "what the previous ring runs".to_string()
            } else {
                print::cell(&reference)
            };
            let why = format!(
                "ring {} already runs {asked} of {}",
                print::cell(&a.to),
                print::cell(&image)
            );
            Ok(printed(print::move_outcome(&resp.moved, &why)))
        }
        Command::Shift(a) => {
            let mut client = a.conn.connect().await?;
            let resp = client
                .shift(pb::ShiftRequest {
                    pipeline: a.pipeline.clone(),
                    force: a.force,
                    reason: a.reason.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| call_failed(&a.conn.server, "shift", s))?
                .into_inner();
            let why = format!(
                "every ring of {} already runs what the ring before it runs, or that ring holds nothing",
                print::cell(&a.pipeline)
            );
            Ok(printed(print::move_outcome(&resp.moved, &why)))
        }
        Command::Unshift(a) => {
            let mut client = a.conn.connect().await?;
            let resp = client
                .unshift(pb::ShiftRequest {
                    pipeline: a.pipeline.clone(),
                    ..Default::default()
                })
                .await
                .map_err(|s| call_failed(&a.conn.server, "unshift", s))?
                .into_inner();
            let why = format!(
                "the last shift of {} left every pointer as it was",
                print::cell(&a.pipeline)
            );
            Ok(printed(print::move_outcome(&resp.moved, &why)))
        }
        Command::Rollback(a) => {
            let mut client = a.conn.connect().await?;
            let resp = client
                .rollback(pb::RollbackRequest {
                    image: a.image.clone(),
                    ring: a.ring.clone(),
                    pipeline: a.pipeline.clone().unwrap_or_default(),
                    reason: a.reason.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| call_failed(&a.conn.server, "rollback", s))?
                .into_inner();
            let why = format!(
                "ring {} of {} already runs its previous digest",
                print::cell(&a.ring),
                print::cell(&a.image)
            );
            Ok(printed(print::move_outcome(&resp.moved, &why)))
        }
        Command::Reject(a) => {
            let (image, reference) = split_reference(&a.reference)?;
            let Some(digest) = reference.strip_prefix('@') else {
                bail!(
                    "reject needs IMAGE@DIGEST (a tag can move; a rejection is of one digest): got {}",
                    print::cell(&a.reference)
                );
            };
            let mut client = a.conn.connect().await?;
            let resp = client
                .reject(pb::RejectRequest {
                    image,
                    digest: digest.to_string(),
                    reason: a.reason.clone(),
                })
                .await
                .map_err(|s| call_failed(&a.conn.server, "reject", s))?
                .into_inner();
            Ok(printed(print::rejected(&resp)))
        }
        Command::Version(VersionCommand::Next(a)) => {
            let status = pick::pipeline(&a.conn, &a.image, a.pipeline.as_deref()).await?;
            let (this, next) = pick::this_and_next(&status, &a.image, &a.ring)?;
            let decision = versioning::next_version(this.side(), next.side(), a.major)?;
            // stdout is the version alone, for `VERSION=$(ferry version next …)`.
            Ok(Outcome::Printed {
                text: format!("{}\n", decision.version),
                note: format!("{}\n", decision.why),
                code: 0,
            })
        }
        Command::NeedsBuild(a) => {
            let status = pick::pipeline(&a.conn, &a.image, a.pipeline.as_deref()).await?;
            let (this, _) = pick::this_and_next(&status, &a.image, &a.ring)?;
            if a.revision.trim().is_empty() {
                bail!("--revision is empty: give the source revision the build would be made from");
            }
            let decision = versioning::needs_build(
                this.side(),
                &BuildInputs {
                    revision: a.revision.clone(),
                    dependencies: a.dependencies.clone(),
                },
            );
            let verdict = if decision.needed {
                "build needed"
            } else {
                "no build needed"
            };
            let why = decision.why.trim_end_matches(": no build needed");
            Ok(Outcome::Printed {
                text: format!("{verdict}: {why}\n"),
                note: String::new(),
                code: if decision.needed { 0 } else { 1 },
            })
        }
    }
}

/// GetPipeline for a pipeline name or an image; `targets`: every target's row, not only the
/// failing ones.
pub(crate) async fn get(
    conn: &ServerArgs,
    name_or_image: &str,
    history: bool,
    targets: bool,
) -> anyhow::Result<pb::PipelineStatus> {
    let mut client = conn.connect().await?;
    let mut status = client
        .get_pipeline(pb::GetPipelineRequest {
            name_or_image: name_or_image.to_string(),
            history,
            targets,
        })
        .await
        .map_err(|s| call_failed(&conn.server, "pipeline status", s))?
        .into_inner();
    ferry_proto::status::resolve_cluster_names(&mut status);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn force_without_reason_is_a_usage_error() {
        for argv in [
            &["ferry", "promote", "x/y", "--to", "users", "--force"][..],
            &["ferry", "shift", "shop", "--force"][..],
        ] {
            let err = crate::Args::try_parse_from(argv).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{err}"
            );
            assert!(err.to_string().contains("--reason"), "{err}");
        }
        crate::Args::try_parse_from([
            "ferry", "promote", "x/y", "--to", "users", "--force", "--reason", "hotfix",
        ])
        .unwrap();
    }

    #[test]
    fn reject_needs_a_reason() {
        let err = crate::Args::try_parse_from(["ferry", "reject", "x/y@sha256:00"]).unwrap_err();
        assert!(err.to_string().contains("--reason"), "{err}");
    }

    #[test]
    fn references_split_as_promote_sends_them() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            split_reference("nginx").unwrap(),
            ("docker.io/library/nginx".into(), "".into())
        );
        assert_eq!(
            split_reference("r.io/a/b:1.2").unwrap(),
            ("r.io/a/b".into(), ":1.2".into())
        );
        assert_eq!(
            split_reference(&format!("r.io/a/b@{d}")).unwrap(),
            ("r.io/a/b".into(), format!("@{d}"))
        );
        let err = split_reference(&format!("r.io/a/b:1@{d}")).unwrap_err();
        assert!(err.to_string().contains("both a tag and a digest"), "{err}");
        assert!(split_reference("r.io/A:b:c").is_err());
    }

    #[test]
    fn dependencies_are_name_equals_version() {
        let a = crate::Args::try_parse_from([
            "ferry",
            "needs-build",
            "x/y",
            "--ring",
            "users",
            "--revision",
            "abc1234",
            "--dependency",
            "api=1.2.0",
            "--dependency",
            "web=2",
        ])
        .unwrap();
        let Command::NeedsBuild(n) = a.command else {
            panic!()
        };
        assert_eq!(
            n.dependencies,
            [("api".into(), "1.2.0".into()), ("web".into(), "2".into())]
        );
        assert!(crate::Args::try_parse_from([
            "ferry",
            "needs-build",
            "x/y",
            "--ring",
            "users",
            "--revision",
            "a",
            "--dependency",
            "api",
        ])
        .is_err());
    }
}
