//! Binding a warrant to one HTTP request: method, target URI and the SHA-256 of the body.

use ciborium::Value;

use crate::cbor::{self, Key, Reader};
use crate::cwt::MAX_TEXT;
use crate::digest::{digests_equal, sha256};
use crate::target::check_request_target;
use crate::Error;

const METHOD: Key = Key::Text("method");
const TARGET: Key = Key::Text("target");
const BODY: Key = Key::Text("body");

/// An actual request as the verifier received it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The method, e.g. `POST` (compared exactly: methods are case-sensitive).
    pub method: &'a str,
    /// The target URI the client addressed, in absolute form as the service reconstructs it,
    /// e.g. `https://api.example.com/v1/deploy?env=prod` (see [`check_request_target`]).
    pub target: &'a str,
    /// The request body (empty for none).
    pub body: &'a [u8],
}

/// What a warrant binds of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBinding {
    /// The method.
    pub method: String,
    /// The target URI, in absolute form (see [`check_request_target`]).
    pub target: String,
    /// SHA-256 of the body.
    pub body_sha256: [u8; 32],
}

impl RequestBinding {
    /// The binding for `request`.
    pub fn of(request: &HttpRequest<'_>) -> Self {
        Self {
            method: request.method.into(),
            target: request.target.into(),
            body_sha256: sha256(request.body),
        }
    }

    /// Refuses a binding verifiers would refuse, before anything is signed.
    pub fn check_signable(&self) -> Result<(), Error> {
        check_request_target(&self.target)
            .map_err(|defect| Error::RequestTargetUnsignable { target: self.target.clone(), defect })
    }

    /// Checks that the bound target has the required form and that `request` is the bound
    /// one, recomputing the body digest.
    pub fn check(&self, request: &HttpRequest<'_>) -> Result<(), Error> {
        check_request_target(&self.target)
            .map_err(|defect| Error::RequestTargetInvalid { target: self.target.clone(), defect })?;
        if self.method != request.method {
            return Err(Error::RequestMethodMismatch {
                expected: self.method.clone(),
                found: request.method.into(),
            });
        }
        if self.target != request.target {
            return Err(Error::RequestTargetMismatch {
                expected: self.target.clone(),
                found: request.target.into(),
            });
        }
        if !digests_equal(&self.body_sha256, &sha256(request.body)) {
            return Err(Error::RequestBodyMismatch);
        }
        Ok(())
    }

    pub(crate) fn to_cbor(&self) -> Value {
        cbor::map_of([
            (BODY, Value::Bytes(self.body_sha256.to_vec())),
            (METHOD, Value::Text(self.method.clone())),
            (TARGET, Value::Text(self.target.clone())),
        ])
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut keys = r.map("request")?;
        let (mut body, mut method, mut target) = (None, None, None);
        while let Some(key) = keys.next(r)? {
            match key {
                k if BODY.is(k) => body = Some(r.fixed_bytes::<32>(BODY.name())?),
                k if METHOD.is(k) => method = Some(r.text(METHOD.name(), 32)?.to_owned()),
                k if TARGET.is(k) => target = Some(r.text(TARGET.name(), MAX_TEXT)?.to_owned()),
                other => return Err(cbor::unknown(r.object(), other)),
            }
        }
        let o = r.object();
        Ok(Self {
            method: cbor::required(o, METHOD.name(), method)?,
            target: cbor::required(o, TARGET.name(), target)?,
            body_sha256: cbor::required(o, BODY.name(), body)?,
        })
    }
}
