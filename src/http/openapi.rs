//! The OpenAPI 3.1 document of API v1, generated from the handlers' `#[utoipa::path]`
//! attributes and the types they exchange, collected by utoipa-actix-web from the very
//! `service(...)` calls that register the routes, so the two cannot drift apart. Error
//! responses name the stable codes of the error table.

use std::collections::BTreeMap;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};
use actix_web::get;
use utoipa_actix_web::AppExt;

use crate::error::ErrorCode;

/// Every error: `{"error": {code, message, request_id}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// The stable code (the error table): clients branch on it, never on the message.
    #[schema(schema_with = error_codes)]
    code: String,
    /// For people; may change between versions.
    message: String,
    /// The request's id, also in its `X-Request-Id` header and every log line it left.
    request_id: Option<String>,
}

fn error_codes() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
        .build()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "docent API",
        description = "Whole-document answers with verified cited spans. Errors carry a stable `code` \
                       (the error table of the README); every response carries `X-Request-Id`.",
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerKeys),
    tags(
        (name = "documents", description = "Uploads, their text and search"),
        (name = "analyses", description = "Summaries and answers with verified citations"),
        (name = "batches", description = "Many documents at once, as durable jobs"),
        (name = "meta", description = "This document"),
    ),
)]
struct ApiDoc;

/// API keys as bearer tokens; a server without keys needs none.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An API key from `docent keys create`; needed once any key exists."))
            .build();
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
        // Optional: an empty requirement allows a server without keys.
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("api_key", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::default(),
        ]);
    }
}

/// This document, as JSON.
#[utoipa::path(tag = "meta", responses((status = 200, description = "The OpenAPI 3.1 document of API v1", body = serde_json::Value), ReadErrors))]
#[get("/openapi.json")]
pub async fn openapi_json(state: super::State) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().content_type("application/json").body(state.openapi_json.clone())
}

/// The document: the routes of `super::api_v1`, registered on a throwaway app exactly as the
/// server registers them.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, paths) = actix_web::App::new().into_utoipa_app().configure(super::api_v1).split_for_parts();
    let mut doc = ApiDoc::openapi();
    doc.merge(paths);
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The error responses of an operation, one per HTTP status, each listing its codes.
fn responses(codes: &[ErrorCode]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for &code in codes {
        by_status.entry(code.status()).or_default().push(code);
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let names: Vec<String> = codes.iter().map(|c| format!("`{}`", c.as_str())).collect();
            let first = codes.first().map_or("internal", |c| c.as_str());
            let example = serde_json::json!({"error": {"code": first, "message": "…", "request_id": "7f0c…"}});
            let content = ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))))
                .example(Some(example))
                .build();
            let response = ResponseBuilder::new()
                .description(format!("Error codes: {}", names.join(", ")))
                .content("application/json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// A set of error codes as an operation's error responses (`responses(..., Errors)`).
macro_rules! errors {
    ($($name:ident: [$($code:ident),* $(,)?];)*) => {$(
        pub struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                responses(&[ErrorCode::Unauthorized, ErrorCode::Internal, $(ErrorCode::$code),*])
            }
        }
    )*};
}

errors! {
    ReadErrors: [];
    DocumentErrors: [DocumentNotFound];
    UploadErrors: [
        CsrfFailed, MissingFile, InvalidRequest, PayloadTooLarge, UnsupportedMediaType, PdfEncrypted,
        PdfCorrupt, PdfNoTextLayer, ParseTimeout, ParseMemoryLimit, DocumentEmpty, InvalidEncoding,
        EngineFailed, StorageFull, StorageReadOnly,
    ];
    DeleteErrors: [CsrfFailed, DocumentNotFound, StorageReadOnly];
    AnalysisErrors: [
        CsrfFailed, InvalidRequest, DocumentNotFound, DocumentTooLong, EngineBusy, EngineFailed, StorageFull,
        StorageReadOnly,
    ];
    SearchErrors: [InvalidRequest, DocumentNotFound];
    AnalysisNotFoundErrors: [AnalysisNotFound];
    ComparisonNotFoundErrors: [ComparisonNotFound];
    BatchSubmitErrors: [
        CsrfFailed, InvalidRequest, MissingFile, PayloadTooLarge, DocumentNotFound, EngineBusy, StorageFull,
        StorageReadOnly,
    ];
    BatchErrors: [BatchNotFound];
    BatchCancelErrors: [CsrfFailed, BatchNotFound, StorageReadOnly];
}
