//! The emulator's own plain-HTTP endpoint (`--listen`): the EKS API for the clusters
//! (`AWS_ENDPOINT_URL_EKS` points here) and `GET /_emulator/clusters`.
//!
//! - `GET /clusters/<name>`: `DescribeCluster` (REST-JSON, as aws-sdk-eks sends it): endpoint,
//!   `certificateAuthority.data`, status `ACTIVE`; an unknown name → 404
//!   `ResourceNotFoundException`;
//! - `GET /clusters`: `ListClusters`;
//! - `GET /_emulator/clusters`: `[{name, server}]`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::eks;
use crate::server::Body;

/// What the endpoint knows: each cluster's name and https URL, the CA, the region.
pub struct Control {
    pub clusters: Vec<(String, String)>,
    pub ca_pem: String,
    pub region: String,
}

fn answer(status: u16, body: &Value, error_type: Option<&str>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Some(t) = error_type.and_then(|t| hyper::header::HeaderValue::from_str(t).ok()) {
        r.headers_mut().insert("x-amzn-errortype", t);
    }
    r
}

/// The answer to `GET path`.
pub fn route(c: &Control, path: &str) -> Response<Body> {
    match path.trim_end_matches('/') {
        "/_emulator/clusters" => answer(
            200,
            &json!(
                c.clusters
                    .iter()
                    .map(|(n, s)| json!({"name": n, "server": s}))
                    .collect::<Vec<_>>()
            ),
            None,
        ),
        "/clusters" => answer(
            200,
            &json!({"clusters": c.clusters.iter().map(|(n, _)| n).collect::<Vec<_>>()}),
            None,
        ),
        p => match p.strip_prefix("/clusters/") {
            Some(name) => match c.clusters.iter().find(|(n, _)| n == name) {
                Some((n, server)) => answer(
                    200,
                    &eks::describe_cluster(n, server, &c.ca_pem, &c.region),
                    None,
                ),
                None => answer(
                    404,
                    &json!({"message": format!("No cluster found for name: {name}.")}),
                    Some("ResourceNotFoundException"),
                ),
            },
            None => answer(
                404,
                &json!({"message": format!("no such endpoint: {p}")}),
                Some("NotFoundException"),
            ),
        },
    }
}

/// Serves the endpoint until the task is aborted.
pub async fn serve(listener: TcpListener, control: Arc<Control>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let control = control.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let r = route(&control, req.uri().path());
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_cluster_answers_known_names_and_404s_the_rest() {
        let c = Control {
            clusters: vec![("staging".into(), "https://127.0.0.1:6443".into())],
            ca_pem: "PEM".into(),
            region: "us-east-1".into(),
        };
        assert_eq!(route(&c, "/clusters/staging").status(), 200);
        let missing = route(&c, "/clusters/nope");
        assert_eq!(missing.status(), 404);
        assert_eq!(
            missing.headers()["x-amzn-errortype"],
            "ResourceNotFoundException"
        );
        let d = eks::describe_cluster("staging", "https://127.0.0.1:6443", "PEM", "us-east-1");
        assert_eq!(d["cluster"]["status"], "ACTIVE");
        assert_eq!(d["cluster"]["certificateAuthority"]["data"], "UEVN");
        assert_eq!(d["cluster"]["endpoint"], "https://127.0.0.1:6443");
    }
}
