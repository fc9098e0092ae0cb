//! The ceiling: an actix-web server that answers every request with one constant manifest and
//! the same headers ferry sends. Nothing can serve a manifest faster on this machine with this
//! stack, so ferry's throughput is quoted as a share of it.

use std::path::PathBuf;

use actix_web::{web, App, HttpResponse, HttpServer};

/// `ferry-bench ceiling`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Listen address.
    #[arg(long)]
    addr: String,
    /// The manifest to serve.
    #[arg(long)]
    body: PathBuf,
    /// Worker threads (ferry-server's default is one per core).
    #[arg(long)]
    workers: Option<usize>,
}

/// Serves until killed.
pub fn serve(o: Options) -> anyhow::Result<()> {
    let body = web::Bytes::from(std::fs::read(&o.body)?);
    let digest = ferry_proto::digest::sha256_digest(&body);
    let workers = o
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let (body, digest) = (body.clone(), digest.clone());
            App::new().default_service(web::to(move || {
                let (body, digest) = (body.clone(), digest.clone());
                async move {
                    HttpResponse::Ok()
                        .insert_header((
                            "Content-Type",
                            "application/vnd.oci.image.manifest.v1+json",
                        ))
                        .insert_header(("Docker-Content-Digest", digest))
                        .body(body)
                }
            }))
        })
        .workers(workers)
        .bind(&o.addr)?
        .run()
        .await
    })?;
    Ok(())
}
