//! The API's handlers: each one authorizes, does its work, and audits the outcome (work with a
//! persistent effect as one unit with its lines: see [`super::operation`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use warrant_attestation::tpm::Credential;
use warrant_attestation::EnrollmentTrust;
use warrant_envelope::device::{RequestBinding, CHALLENGE_LEN};
use warrant_envelope::thumbprint;
use warrant_hsm_backends::{KeyInfo, KeyName, TpmIdentity};

use super::audit::{Decision, Entry};
use super::body::JsonBody;
use super::config::AuthorityConfig;
use super::error::ApiError;
use super::operation::{self, Effect, Progress};
use super::peer::Caller;
use super::rules::{Operation, Request};
use super::state::Daemon;
use crate::authority::{Authority, GrantOptions};
use crate::device::{self, WarrantRequest};
use crate::keyring::KeyPurpose;
use crate::newest_lists::Offered;
use crate::{files, Error};
use warrant_api::trust::TrustFile;
use warrant_api::{self as api, hex_field};

type Answer<T> = Result<Json<T>, ApiError>;
type Shared = State<Arc<Daemon>>;

/// Anything the API does not have (wrong path or method): a JSON 404, audited.
pub async fn no_such_endpoint(
    State(d): Shared,
    caller: Option<Extension<Caller>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> ApiError {
    let message = format!("warrantd has no endpoint {method} {}; see docs/openapi.json", uri.path());
    let entry = Entry { operation: "request", reason: Some(message.clone()), ..Default::default() };
    let caller = caller.map(|Extension(c)| c);
    if let Err(e) = d.audit.record(caller.as_ref(), Decision::Deny, entry).await {
        return e.into();
    }
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "no_such_endpoint", message)
}

/// `GET /v1/health`.
pub async fn health() -> Json<api::Health> {
    Json(api::Health { status: "ok".into() })
}

/// `GET /v1/version`.
pub async fn version(State(d): Shared) -> Json<api::Version> {
    let active = d.keys.store().backend();
    let backends = warrant_hsm_backends::BACKENDS
        .iter()
        .map(|b| api::Backend {
            name: b.kind.as_str().into(),
            compiled: b.compiled,
            active: active == b.kind,
        })
        .collect();
    Json(api::Version {
        version: env!("CARGO_PKG_VERSION").into(),
        api: "v1".into(),
        schema: crate::database::schema_version(),
        backends,
        features: vec!["authority".into(), "socket-activation".into(), "sd-notify".into()],
    })
}

fn key_view(info: &KeyInfo, purpose: KeyPurpose) -> api::Key {
    api::Key {
        name: info.name.to_string(),
        purpose: purpose.as_str().into(),
        backend: info.backend.as_str().into(),
        protection: info.protection.as_str().into(),
        created_at: info.created_at,
        kid: hex::encode(thumbprint(&info.public_key)),
        x: hex::encode(info.public_key.x()),
        y: hex::encode(info.public_key.y()),
    }
}

/// `GET /v1/keys`.
pub async fn list_keys(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
) -> Answer<api::KeyList> {
    let entry = Entry { operation: Operation::KeysList.as_str(), ..Default::default() };
    let request = Request::of(Operation::KeysList);
    let permit = d.authorize(&caller, &progress, request, &entry).await?;
    let result =
        d.keys.list().map(|keys| api::KeyList { keys: keys.iter().map(|(i, p)| key_view(i, *p)).collect() });
    d.conclude(&caller, permit, entry, result).await.map(Json)
}

/// `POST /v1/keys`.
pub async fn create_key(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    JsonBody(req): JsonBody<api::CreateKey>,
) -> Answer<api::Key> {
    let entry = Entry {
        operation: Operation::KeysCreate.as_str(),
        key: Some(req.name.clone()),
        ..Default::default()
    };
    let request = Request::on_key(Operation::KeysCreate, &req.name);
    let permit = d.authorize(&caller, &progress, request, &entry).await?;
    let work = d.clone();
    let create = move || {
        let name = KeyName::new(&req.name)?;
        let info = work.keys.create(&work.db(), &name, KeyPurpose::Device)?;
        Ok(key_view(&info, KeyPurpose::Device))
    };
    operation::run(&d, &caller, permit, entry, Effect::Persistent, create, |_, _| ()).await.map(Json)
}

/// `POST /v1/keys/existing`: a device key that exists in the backend already.
pub async fn existing_key(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    JsonBody(req): JsonBody<api::ExistingKey>,
) -> Answer<api::Key> {
    // The audit line names the URI without its query, which may carry a PIN.
    let shown = warrant_hsm_backends::pkcs11::redacted_uri(&req.uri);
    let entry = Entry { operation: Operation::KeysCreate.as_str(), key: Some(shown), ..Default::default() };
    // Rules match key names: the URI's object label is the name.
    let label = warrant_hsm_backends::pkcs11::Pkcs11Uri::parse(&req.uri).ok().and_then(|u| u.object);
    let request = Request::on_key(Operation::KeysCreate, label.as_deref().unwrap_or(""));
    let permit = d.authorize(&caller, &progress, request, &entry).await?;
    let work = d.clone();
    let adopt = move || {
        let info = work.keys.adopt(&work.db(), &req.uri, KeyPurpose::Device)?;
        Ok(key_view(&info, KeyPurpose::Device))
    };
    operation::run(&d, &caller, permit, entry, Effect::Persistent, adopt, |_, _| ()).await.map(Json)
}

/// `GET /v1/keys/{name}`.
pub async fn get_key(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    Path(name): Path<String>,
) -> Answer<api::Key> {
    let entry =
        Entry { operation: Operation::KeysRead.as_str(), key: Some(name.clone()), ..Default::default() };
    let request = Request::on_key(Operation::KeysRead, &name);
    let permit = d.authorize(&caller, &progress, request, &entry).await?;
    let result = (|| {
        let key = KeyName::new(&name)?;
        let purpose =
            d.keys.purpose(&key).ok_or_else(|| Error::NotFound(format!("no key named {name:?}")))?;
        let info = d
            .keys
            .store()
            .list()?
            .into_iter()
            .find(|i| i.name == key)
            .ok_or_else(|| Error::NotFound(format!("no key named {name:?}")))?;
        Ok(key_view(&info, purpose))
    })();
    d.conclude(&caller, permit, entry, result).await.map(Json)
}

/// `DELETE /v1/keys/{name}`: device keys only (the authority keeps its issuance keys).
pub async fn delete_key(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    Path(name): Path<String>,
) -> Answer<api::Deleted> {
    let entry =
        Entry { operation: Operation::KeysDelete.as_str(), key: Some(name.clone()), ..Default::default() };
    let permit =
        d.authorize(&caller, &progress, Request::on_key(Operation::KeysDelete, &name), &entry).await?;
    let work = d.clone();
    let delete = move || {
        let key = KeyName::new(&name)?;
        work.keys.delete(&work.db(), &key)?;
        Ok(api::Deleted { name })
    };
    operation::run(&d, &caller, permit, entry, Effect::Persistent, delete, |_, _| ()).await.map(Json)
}

/// `POST /v1/keys/{name}/evidence`.
pub async fn key_evidence(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<api::EvidenceRequest>,
) -> Answer<api::EvidenceResponse> {
    let entry =
        Entry { operation: Operation::KeysRead.as_str(), key: Some(name.clone()), ..Default::default() };
    let request = Request::on_key(Operation::KeysRead, &name);
    let permit = d.authorize(&caller, &progress, request, &entry).await?;
    let result = key_work(&d, || {
        let nonce = hex_field::<32>("nonce", &req.nonce)?;
        let key = KeyName::new(&name)?;
        if d.keys.purpose(&key).is_none() {
            return Err(Error::NotFound(format!("no key named {name:?}")));
        }
        let evidence = d.keys.store().enrollment_evidence(&key, &nonce)?;
        let mut bytes = Vec::new();
        ciborium::into_writer(&evidence.to_cbor(), &mut bytes)
            .map_err(|e| Error::Internal { task: "encoding evidence", reason: e.to_string() })?;
        Ok(api::EvidenceResponse { kind: evidence.kind().as_str().into(), evidence: bytes })
    });
    d.conclude(&caller, permit, entry, result).await.map(Json)
}

/// Yubico's roots, the configured extra YubiKey roots, and the YSA-2024-03 choice.
fn enrollment_trust(config: &AuthorityConfig) -> Result<EnrollmentTrust, Error> {
    let now = warrant_envelope::verify::Clock::now(&warrant_envelope::verify::SystemClock);
    let mut trust = EnrollmentTrust::new(now).map_err(warrant_envelope::Error::from)?;
    for root in files::certificates(&config.yubikey_roots)? {
        trust.piv = trust.piv.with_root(root);
    }
    trust.piv = trust.piv.allow_ysa_2024_03(config.allow_ysa_2024_03);
    Ok(trust)
}

/// `GET /v1/tpm/identity`.
pub async fn tpm_identity(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
) -> Answer<api::TpmIdentity> {
    let entry = Entry { operation: Operation::KeysRead.as_str(), ..Default::default() };
    let permit = d.authorize(&caller, &progress, Request::of(Operation::KeysRead), &entry).await?;
    let result = key_work(&d, || {
        let identity = d.keys.store().tpm_identity()?;
        Ok(api::TpmIdentity { ek_certificate: identity.ek_certificate, ak_public: identity.ak_public })
    });
    d.conclude(&caller, permit, entry, result).await.map(Json)
}

/// `POST /v1/enroll`.
pub async fn enroll(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    JsonBody(req): JsonBody<api::EnrollRequest>,
) -> Answer<api::EnrollResponse> {
    let entry = Entry {
        operation: Operation::Enroll.as_str(),
        key: Some(req.key.clone()),
        principal: Some(req.principal.clone()),
        ..Default::default()
    };
    let request = Request::on_key(Operation::Enroll, &req.key);
    let permit = d.authorize(&caller, &progress, request, &entry).await?;
    let result = key_work(&d, || {
        let challenge = match (&req.challenge, &req.tpm_credential) {
            (Some(hex), None) => hex_field("challenge", hex)?,
            (None, Some(c)) => {
                let credential = Credential {
                    id_object: c.id_object.clone(),
                    encrypted_secret: c.encrypted_secret.clone(),
                };
                let secret = d.keys.store().activate_credential(&credential)?;
                <[u8; CHALLENGE_LEN]>::try_from(secret.as_slice()).map_err(|_| {
                    Error::Usage("the activated TPM credential is not a 32-byte challenge".into())
                })?
            }
            _ => return Err(Error::Usage("give exactly one of challenge and tpm_credential".into())),
        };
        let key = d.keys.signer(&req.key, KeyPurpose::Device)?;
        Ok(api::EnrollResponse { enrollment: device::enroll(&key, &req.principal, challenge)? })
    });
    d.conclude(&caller, permit, entry, result).await.map(Json)
}

/// `POST /v1/sign`.
pub async fn sign(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    JsonBody(req): JsonBody<api::SignRequest>,
) -> Answer<api::SignResponse> {
    let mut entry = Entry {
        operation: Operation::Sign.as_str(),
        key: Some(req.key.clone()),
        action: Some(req.action.clone()),
        resource: Some(req.resource.clone()),
        audience: Some(req.audience.clone()),
        ..Default::default()
    };
    let request = Request {
        audience: Some(&req.audience),
        action: Some(&req.action),
        ..Request::on_key(Operation::Sign, &req.key)
    };
    let permit = d.authorize(&caller, &progress, request, &entry).await?;
    let result = key_work(&d, || {
        let key = d.keys.signer(&req.key, KeyPurpose::Device)?;
        if let Some(list) = &req.status_list {
            if let Offered::Superseded { held } = d.status_lists.offer(list)? {
                tracing::info!(
                    held,
                    "the status list given is not newer than the one held; quotes stay bound to that"
                );
            }
        }
        let nonce = req
            .nonce
            .as_deref()
            .map(|n| hex::decode(n).map_err(|_| Error::Usage("nonce must be hex".into())))
            .transpose()?;
        let warrant = device::sign_warrant(
            &key,
            &WarrantRequest {
                grant: &req.grant,
                audience: &req.audience,
                action: &req.action,
                resource: &req.resource,
                request: RequestBinding {
                    method: req.request.method.clone(),
                    target: req.request.target.clone(),
                    body_sha256: hex_field("request.body_sha256", &req.request.body_sha256)?,
                },
                context: api::attributes(&req.context)?,
                nonce,
                lifetime: req.ttl,
                status_lists: Some(&d.status_lists),
            },
        )?;
        Ok(warrant)
    });
    let result = result.map(|(warrant, claims)| api::SignResponse {
        warrant,
        warrant_id: hex::encode(claims.id),
        expires_at: claims.expires_at,
    });
    if let Ok(signed) = &result {
        entry.warrant_id = Some(signed.warrant_id.clone());
    }
    d.conclude(&caller, permit, entry, result).await.map(Json)
}

/// Runs key work: inline with the software store (tens of microseconds), and with hardware
/// outside the async workers' turn (a token can take milliseconds, and must not stall the
/// other connections).
fn key_work<T>(d: &Daemon, work: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if d.keys.store().backend().is_hardware() && multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// The audit entry of authority `operation`, before its outcome is known.
fn entry_of(operation: Operation) -> Entry {
    Entry { operation: operation.as_str(), ..Default::default() }
}

/// Authorizes an authority operation and runs it with the authority on the blocking pool as
/// one unit with its audit lines (reads have no `begin` line); `describe` adds the outcome's
/// ids to the outcome line.
async fn authority_op<T: Send + 'static>(
    d: Arc<Daemon>,
    caller: Caller,
    progress: Progress,
    (operation, entry): (Operation, Entry),
    work: impl FnOnce(&mut Authority<'_>) -> Result<T, Error> + Send + 'static,
    describe: impl FnOnce(&T, &mut Entry) + Send + 'static,
) -> Answer<T> {
    let permit = d.authorize(&caller, &progress, Request::of(operation), &entry).await?;
    let effect = if operation == Operation::AuthorityRead { Effect::None } else { Effect::Persistent };
    let shared = d.clone();
    let work = move || {
        let mut conn = shared.db();
        work(&mut Authority::new(&mut conn, &shared.keys))
    };
    operation::run(&d, &caller, permit, entry, effect, work, describe).await.map(Json)
}

fn settings_view(authority: &Authority<'_>) -> Result<api::AuthoritySettings, Error> {
    let s = authority.settings()?;
    Ok(api::AuthoritySettings {
        issuer: s.issuer,
        status_uri: s.status_uri,
        active_key: s.active_key,
        keys: s.keys,
        grants_issued: s.next_status_index,
        status_sequence: s.status_sequence,
    })
}

/// `POST /v1/authority`.
pub async fn init_authority(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    JsonBody(req): JsonBody<api::InitAuthority>,
) -> Answer<api::AuthoritySettings> {
    authority_op(
        d,
        caller,
        progress,
        (Operation::AuthorityInit, entry_of(Operation::AuthorityInit)),
        move |a| {
            a.init(&req.issuer, &req.status_uri, req.key_uri.as_deref())?;
            settings_view(a)
        },
        |s, e| e.key = Some(s.active_key.clone()),
    )
    .await
}

/// `GET /v1/authority`.
pub async fn authority_settings(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
) -> Answer<api::AuthoritySettings> {
    let read = (Operation::AuthorityRead, entry_of(Operation::AuthorityRead));
    authority_op(d, caller, progress, read, |a| settings_view(a), |_, _| ()).await
}

/// `GET /v1/authority/trust`.
pub async fn trust(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
) -> Answer<TrustFile> {
    let work = |a: &mut Authority<'_>| Ok(TrustFile::from(&a.trusted()?));
    let read = (Operation::AuthorityRead, entry_of(Operation::AuthorityRead));
    authority_op(d, caller, progress, read, work, |_, _| ()).await
}

/// `POST /v1/authority/challenges`.
pub async fn challenge(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    JsonBody(req): JsonBody<api::ChallengeRequest>,
) -> Answer<api::ChallengeResponse> {
    let roots = d.live().config.authority.tpm_ek_roots.clone();
    let work = move |a: &mut Authority<'_>| match req.tpm_identity {
        None => Ok(api::ChallengeResponse {
            challenge: Some(hex::encode(a.challenge(req.ttl, req.principal.as_deref())?)),
            tpm_credential: None,
            principal: req.principal,
            ttl: req.ttl,
        }),
        Some(identity) => {
            let anchors = files::certificates(&roots)?;
            let identity =
                TpmIdentity { ek_certificate: identity.ek_certificate, ak_public: identity.ak_public };
            let c = a.tpm_challenge(req.ttl, req.principal.as_deref(), &identity, &anchors)?;
            Ok(api::ChallengeResponse {
                challenge: None,
                tpm_credential: Some(api::TpmCredential {
                    id_object: c.id_object,
                    encrypted_secret: c.encrypted_secret,
                }),
                principal: req.principal,
                ttl: req.ttl,
            })
        }
    };
    let describe = |c: &api::ChallengeResponse, e: &mut Entry| e.principal = c.principal.clone();
    let op = Operation::AuthorityChallenge;
    authority_op(d, caller, progress, (op, entry_of(op)), work, describe).await
}

/// `POST /v1/authority/grants`.
pub async fn grant(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    JsonBody(req): JsonBody<api::GrantRequest>,
) -> Answer<api::GrantResponse> {
    let authority = d.live().config.authority.clone();
    let work = move |a: &mut Authority<'_>| {
        let options = GrantOptions {
            principal: req.principal,
            policy: req.policy,
            groups: req.groups,
            attributes: api::attributes(&req.attributes)?,
            valid_for: req.valid_for,
            max_warrant_lifetime: req.max_warrant_ttl,
            allow_software: req.allow_software,
            allow_self_reported: req.allow_self_reported,
            trust: enrollment_trust(&authority)?,
        };
        let (grant, claims) = a.grant(&req.enrollment, &options)?;
        Ok(api::GrantResponse {
            grant,
            grant_id: hex::encode(claims.id),
            principal: claims.principal,
            status_index: claims.status.index,
            expires_at: claims.expires_at,
        })
    };
    let describe = |g: &api::GrantResponse, e: &mut Entry| {
        e.grant_id = Some(g.grant_id.clone());
        e.principal = Some(g.principal.clone());
    };
    let op = Operation::AuthorityGrant;
    authority_op(d, caller, progress, (op, entry_of(op)), work, describe).await
}

/// `POST /v1/authority/revocations`.
pub async fn revoke(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    JsonBody(req): JsonBody<api::RevokeRequest>,
) -> Answer<api::RevokeResponse> {
    // The begin line names the grant: a revocation is traceable even if its outcome line is not.
    let entry = Entry { grant_id: Some(req.grant_id.clone()), ..entry_of(Operation::AuthorityRevoke) };
    let work = move |a: &mut Authority<'_>| {
        let id = hex_field::<16>("grant_id", &req.grant_id)?;
        let revoked = a.revoke(&id)?;
        Ok(api::RevokeResponse {
            grant_id: hex::encode(revoked.id),
            principal: revoked.principal,
            status_index: revoked.status_index,
        })
    };
    let describe = |r: &api::RevokeResponse, e: &mut Entry| {
        e.grant_id = Some(r.grant_id.clone());
        e.principal = Some(r.principal.clone());
    };
    authority_op(d, caller, progress, (Operation::AuthorityRevoke, entry), work, describe).await
}

/// `POST /v1/authority/status-lists`.
pub async fn publish_status(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    JsonBody(req): JsonBody<api::PublishRequest>,
) -> Answer<api::StatusListResponse> {
    let work = move |a: &mut Authority<'_>| {
        let (list, claims) = a.publish_status(req.valid_for, req.ttl)?;
        Ok(api::StatusListResponse { sequence: claims.sequence, list })
    };
    let describe = |s: &api::StatusListResponse, e: &mut Entry| e.status_sequence = Some(s.sequence);
    let op = Operation::AuthorityPublish;
    authority_op(d, caller, progress, (op, entry_of(op)), work, describe).await
}

/// `GET /v1/authority/status-lists/latest`.
pub async fn latest_status(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
) -> Answer<api::StatusListResponse> {
    let work = |a: &mut Authority<'_>| {
        let sequence = a.settings()?.status_sequence;
        Ok(api::StatusListResponse { sequence, list: a.status_list(None)? })
    };
    let read = (Operation::AuthorityRead, entry_of(Operation::AuthorityRead));
    authority_op(d, caller, progress, read, work, |_, _| ()).await
}

/// `GET /v1/authority/status-lists/{sequence}`: a published list by its sequence, for
/// publishing the history a verifier walks when it missed lists.
pub async fn status_by_sequence(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
    Path(sequence): Path<u64>,
) -> Answer<api::StatusListResponse> {
    let work = move |a: &mut Authority<'_>| {
        Ok(api::StatusListResponse { sequence, list: a.status_list(Some(sequence))? })
    };
    let read = (Operation::AuthorityRead, entry_of(Operation::AuthorityRead));
    authority_op(d, caller, progress, read, work, |_, _| ()).await
}

/// `POST /v1/authority/keys`: rotates the issuance key.
pub async fn rotate_key(
    State(d): Shared,
    Extension(caller): Extension<Caller>,
    Extension(progress): Extension<Progress>,
) -> Answer<api::RotateResponse> {
    let work = |a: &mut Authority<'_>| Ok(api::RotateResponse { active_key: a.rotate_key()? });
    let describe = |r: &api::RotateResponse, e: &mut Entry| e.key = Some(r.active_key.clone());
    let op = Operation::AuthorityRotate;
    authority_op(d, caller, progress, (op, entry_of(op)), work, describe).await
}
