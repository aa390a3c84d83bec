//! aws-sdk-ecs's own JSON (de)serializers, used without a network.
//!
//! ECS's wire format (JSON 1.1) is the JSON users keep in files and see from the AWS CLI.
//! An `aws_sdk_ecs::Client` whose HTTP client answers every request in memory turns that JSON
//! into SDK types exactly as a real answer would be read ([`crate::files`]), and captures the
//! JSON the SDK would send (`taskdef::registration_json`, for the `--dry-run` diff). No mirror of
//! the ECS model is written by hand, so nothing drifts from the SDK.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::sync::{Arc, Mutex};

/// The body of the last request an offline client sent.
pub type SentBody = Arc<Mutex<Option<Vec<u8>>>>;

/// A client that never leaves the process: every request gets `response` as a 200 answer,
/// and its body is kept in the returned [`SentBody`].
pub fn offline_client(response: String) -> (Client, SentBody) {
    let sent = SentBody::default();
    let http = CannedResponse {
        response: Arc::new(response),
        sent: sent.clone(),
    };
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("offline", "offline", None, None, "file"))
        .endpoint_url("http://offline.invalid")
        .http_client(http)
        .build();
    (Client::from_conf(config), sent)
}

/// The in-memory HTTP client of [`offline_client`].
#[derive(Debug, Clone)]
struct CannedResponse {
    response: Arc<String>,
    sent: SentBody,
}

impl HttpConnector for CannedResponse {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if let Ok(mut sent) = self.sent.lock() {
            *sent = request.body().bytes().map(<[u8]>::to_vec);
        }
        let status = 200u16.try_into().expect("200 is a status code");
        let response = HttpResponse::new(status, SdkBody::from(self.response.as_str().to_owned()));
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for CannedResponse {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}
