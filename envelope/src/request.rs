//! Binding a warrant to one HTTP request: method, target URI and the SHA-256 of the body.

use ciborium::Value;

use crate::cbor::{self, Claims, Key};
use crate::cwt::MAX_TEXT;
use crate::digest::{digests_equal, sha256};
use crate::{Error, ObjectType};

const METHOD: Key = Key::Text("method");
const TARGET: Key = Key::Text("target");
const BODY: Key = Key::Text("body");

/// An actual request as the verifier received it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The method, e.g. `POST` (compared exactly: methods are case-sensitive).
    pub method: &'a str,
    /// The target URI the client addressed, e.g. `https://api.example.com/v1/deploy?env=prod`.
    pub target: &'a str,
    /// The request body (empty for none).
    pub body: &'a [u8],
}

/// What a warrant binds of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBinding {
    /// The method.
    pub method: String,
    /// The target URI.
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

    /// Checks that `request` is the bound one, recomputing the body digest.
    pub fn check(&self, request: &HttpRequest<'_>) -> Result<(), Error> {
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

    pub(crate) fn from_cbor(object: ObjectType, value: Value) -> Result<Self, Error> {
        let mut c = Claims::open(object, value, "request")?;
        let body_sha256 = c.fixed_bytes::<32>(BODY)?;
        let method = c.text(METHOD, 32)?;
        let target = c.text(TARGET, MAX_TEXT)?;
        c.finish()?;
        Ok(Self { method, target, body_sha256 })
    }
}
