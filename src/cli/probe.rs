//! `cpgate probe URL`: a container health check that needs no shell or curl.

use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// An http:// URL, e.g. http://127.0.0.1:9483/readyz.
    pub url: http::Uri,
    /// Succeed on any HTTP answer (the server is up), not only 2xx.
    #[arg(long)]
    pub any_status: bool,
}

/// Exits 0 when the URL answers (2xx, or anything with `--any-status`) within 3 s.
pub async fn probe(args: &ProbeArgs) -> anyhow::Result<()> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = tokio::time::timeout(Duration::from_secs(3), client.get(args.url.clone()))
        .await
        .map_err(|_| anyhow::anyhow!("{}: no answer within 3 s", args.url))??;
    let status = response.status();
    if status.is_success() || args.any_status {
        println!("{status}");
        Ok(())
    } else {
        anyhow::bail!("{}: {status}", args.url)
    }
}
