//! Reading an image from its origin registry: one manifest fetch, the index children, the configs.
//! Layers are never downloaded.
//!
//! Auth follows the distribution spec's challenge flow: an anonymous request first; on 401 the
//! `WWW-Authenticate` challenge says Basic (send the credentials) or Bearer (fetch a token from the
//! realm for `repository:NAME:pull`, then retry with it).

use anyhow::{bail, Context};
use base64::Engine as _;
use ferry_proto::client::{error_chain, tls_handshake_saw_plain_text};
use ferry_proto::manifest::ACCEPTED_MANIFEST_TYPES;
use ferry_proto::pb;
use ferry_proto::reference::{Reference, DOCKER_HUB};
use reqwest::{header, StatusCode};

use super::{collect, DocumentReader, FetchedImage};

/// Registry responses larger than this are not manifests or configs.
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;

/// User name and password for the origin.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl Credentials {
    /// Parses `USER:PASSWORD`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s.split_once(':') {
            Some((u, p)) => Ok(Credentials {
                username: u.into(),
                password: p.into(),
            }),
            None => bail!("--creds must be USER:PASSWORD"),
        }
    }

    /// Looks `registry` up in the docker config file (`$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`), `auths.<host>.auth`. Credential helpers are not consulted.
    pub fn from_docker_config(registry: &str) -> Option<Self> {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker"))
            })?;
        let raw = std::fs::read(dir.join("config.json")).ok()?;
        let cfg: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        let auths = cfg.get("auths")?.as_object()?;
        let keys: Vec<String> = if registry == DOCKER_HUB {
            vec![
                "https://index.docker.io/v1/".into(),
                "index.docker.io".into(),
                "docker.io".into(),
            ]
        } else {
            vec![
                registry.into(),
                format!("https://{registry}"),
                format!("http://{registry}"),
            ]
        };
        let auth = keys
            .iter()
            .find_map(|k| auths.get(k)?.get("auth")?.as_str())?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        Credentials::parse(&String::from_utf8(decoded).ok()?).ok()
    }
}

/// The HTTP base URL of a registry host.
pub fn base_url(registry: &str, insecure: bool) -> String {
    let host = if registry == DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    };
    format!("{}://{host}", if insecure { "http" } else { "https" })
}

/// A client for one repository at one registry.
pub struct RegistryReader {
    http: reqwest::Client,
    base: String,
    repository: String,
    creds: Option<Credentials>,
    /// The Authorization header that worked, reused for every later request.
    auth: Option<String>,
}

impl RegistryReader {
    /// A reader for `repository` at `base` (e.g. `http://127.0.0.1:5001`).
    pub fn new(
        base: String,
        repository: String,
        creds: Option<Credentials>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(RegistryReader {
            http,
            base,
            repository,
            creds,
            auth: None,
        })
    }

    async fn get(
        &mut self,
        path: &str,
        accept: &[&str],
    ) -> anyhow::Result<(StatusCode, header::HeaderMap, Vec<u8>)> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repository);
        let mut retried_auth = false;
        loop {
            let mut req = self.http.get(&url);
            for a in accept {
                req = req.header(header::ACCEPT, *a);
            }
            if let Some(auth) = &self.auth {
                req = req.header(header::AUTHORIZATION, auth);
            }
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) => return Err(self.unreachable(&e).await),
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !retried_auth {
                let challenge = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                self.auth = Some(self.authorize(&challenge).await?);
                retried_auth = true;
                continue;
            }
            let headers = resp.headers().clone();
            if resp
                .content_length()
                .is_some_and(|l| l as usize > MAX_DOCUMENT)
            {
                bail!("{url}: response is larger than {MAX_DOCUMENT} bytes");
            }
            let body = resp
                .bytes()
                .await
                .with_context(|| format!("reading {url}"))?;
            return Ok((status, headers, body.to_vec()));
        }
    }

    /// Why a request could not be sent. A TLS handshake answered with something that is not
    /// TLS is followed by one plain-HTTP `GET /v2/`: when that gets an answer, the origin is a
    /// plain-HTTP registry, and the remedy is --insecure.
    async fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        if let Some(host) = self.base.strip_prefix("https://") {
            if tls_handshake_saw_plain_text(e)
                && self
                    .http
                    .get(format!("http://{host}/v2/"))
                    .timeout(std::time::Duration::from_secs(5))
                    .send()
                    .await
                    .is_ok()
            {
                return anyhow::anyhow!(
                    "the origin registry {host} speaks plain HTTP, not HTTPS: pass --insecure to read it over http://"
                );
            }
        }
        anyhow::anyhow!(
            "cannot reach origin registry {}: {}",
            self.base,
            error_chain(e)
        )
    }

    /// Answers a 401 challenge with an Authorization header value.
    async fn authorize(&self, challenge: &str) -> anyhow::Result<String> {
        let basic = self.creds.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return basic.with_context(|| format!("origin {} requires credentials: pass --creds USER:PASSWORD or log in with docker", self.base));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            bail!(
                "origin {} answered 401 with an unsupported challenge {challenge:?}",
                self.base
            );
        }
        let param = |name: &str| {
            params.split(',').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_string())
            })
        };
        let realm = param("realm")
            .with_context(|| format!("bearer challenge without a realm: {challenge:?}"))?;
        let mut req = self
            .http
            .get(&realm)
            .query(&[("scope", format!("repository:{}:pull", self.repository))]);
        if let Some(service) = param("service") {
            req = req.query(&[("service", service)]);
        }
        if let Some(b) = &basic {
            req = req.header(header::AUTHORIZATION, b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("token request to {realm}: {}", error_chain(&e)))?;
        if !resp.status().is_success() {
            bail!(
                "token request to {realm} failed with {} (wrong --creds?)",
                resp.status()
            );
        }
        let body: serde_json::Value = resp
            .json()
            .await
            .with_context(|| format!("token response from {realm}"))?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .with_context(|| format!("token response from {realm} has no token"))?;
        Ok(format!("Bearer {token}"))
    }

    fn fail(&self, what: &str, status: StatusCode, body: &[u8]) -> anyhow::Error {
        let code = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["errors"][0]["code"].as_str().map(String::from))
            .unwrap_or_default();
        anyhow::anyhow!(
            "{what} at origin {}/{}: HTTP {status} {code}",
            self.base,
            self.repository
        )
    }

    /// Fetches a manifest by tag or digest; returns its digest, media type and bytes.
    pub async fn fetch_manifest(&mut self, reference: &str) -> anyhow::Result<pb::Content> {
        let (status, headers, body) = self
            .get(&format!("manifests/{reference}"), &ACCEPTED_MANIFEST_TYPES)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(self.fail(&format!("manifest {reference:?} not found"), status, &body));
        }
        if !status.is_success() {
            return Err(self.fail(
                &format!("fetching manifest {reference:?} failed"),
                status,
                &body,
            ));
        }
        let digest = if reference.contains(':') {
            reference.to_string()
        } else {
            ferry_proto::digest::sha256_digest(&body)
        };
        ferry_proto::digest::verify(&digest, &body)
            .with_context(|| format!("manifest {reference:?} from {}", self.base))?;
        if let Some(said) = headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if said.starts_with("sha256:") && said != digest {
                bail!("origin {} says manifest {reference:?} is {said} but its bytes hash to {digest}", self.base);
            }
        }
        // The body's own mediaType decides (or its shape, when it has none). The Content-Type
        // header only labels a body that is not JSON, which ferry-server then refuses clearly.
        let media_type =
            ferry_proto::manifest::effective_media_type(None, &body).unwrap_or_else(|_| {
                let header = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                header.unwrap_or_default().to_string()
            });
        Ok(pb::Content {
            digest,
            media_type,
            data: body,
        })
    }
}

impl DocumentReader for RegistryReader {
    async fn manifest(&mut self, digest: &str, _media_type: &str) -> anyhow::Result<Vec<u8>> {
        Ok(self.fetch_manifest(digest).await?.data)
    }

    async fn blob(&mut self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let (status, _, body) = self.get(&format!("blobs/{digest}"), &[]).await?;
        if !status.is_success() {
            return Err(self.fail(&format!("blob {digest}"), status, &body));
        }
        Ok(body)
    }
}

/// Reads the image `reference` from its registry. Returns it and the origin to record.
pub async fn read(
    reference: &Reference,
    creds: Option<Credentials>,
    insecure: bool,
) -> anyhow::Result<(FetchedImage, pb::Origin)> {
    let base = base_url(reference.name.registry(), insecure);
    let creds = creds.or_else(|| Credentials::from_docker_config(reference.name.registry()));
    let mut reader = RegistryReader::new(base.clone(), reference.name.path().to_string(), creds)?;
    let wanted = reference
        .digest
        .as_deref()
        .or(reference.tag.as_deref())
        .expect("source has a tag or digest");
    let top = reader.fetch_manifest(wanted).await?;
    let image = collect(&mut reader, top).await?;
    Ok((
        image,
        pb::Origin {
            registry_url: base,
            repository: reference.name.path().to_string(),
        },
    ))
}
