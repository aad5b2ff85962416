//! The trussed backends piv-authenticator needs: the core backend, trussed-auth (PINs) and
//! trussed-staging (chunked, hpke, wrap-key-to-file), behind one dispatcher.

use trussed::backend::{Backend as _, BackendId};
use trussed::platform::Platform;
use trussed::serde_extensions::{ExtensionDispatch, ExtensionId};
use trussed::service::ServiceResources;
use trussed::types::Context;
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::api::{reply, request, Reply, Request};
use trussed_core::types::Location;
use trussed_core::Error;
use trussed_hpke::HpkeExtension;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

pub struct Dispatch {
    auth: AuthBackend,
    staging: StagingBackend,
}

impl Default for Dispatch {
    fn default() -> Self {
        Self {
            auth: AuthBackend::new(Location::Internal, FilesystemLayout::V0),
            staging: StagingBackend::new(),
        }
    }
}

#[derive(Default)]
pub struct DispatchContext {
    auth: AuthContext,
    staging: StagingContext,
}

pub enum Backend {
    Auth,
    Staging,
}

pub enum Extension {
    Auth,
    Chunked,
    Hpke,
    WrapKeyToFile,
}

impl From<Extension> for u8 {
    fn from(e: Extension) -> u8 {
        match e {
            Extension::Auth => 0,
            Extension::Chunked => 1,
            Extension::Hpke => 2,
            Extension::WrapKeyToFile => 3,
        }
    }
}

impl TryFrom<u8> for Extension {
    type Error = Error;
    fn try_from(id: u8) -> Result<Self, Error> {
        match id {
            0 => Ok(Extension::Auth),
            1 => Ok(Extension::Chunked),
            2 => Ok(Extension::Hpke),
            3 => Ok(Extension::WrapKeyToFile),
            _ => Err(Error::FunctionNotSupported),
        }
    }
}

impl ExtensionId<AuthExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::Auth;
}
impl ExtensionId<ChunkedExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::Chunked;
}
impl ExtensionId<HpkeExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::Hpke;
}
impl ExtensionId<WrapKeyToFileExtension> for Dispatch {
    type Id = Extension;
    const ID: Extension = Extension::WrapKeyToFile;
}

impl ExtensionDispatch for Dispatch {
    type BackendId = Backend;
    type Context = DispatchContext;
    type ExtensionId = Extension;

    fn core_request<P: Platform>(
        &mut self,
        backend: &Backend,
        ctx: &mut Context<DispatchContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        match backend {
            Backend::Auth => self.auth.request(&mut ctx.core, &mut ctx.backends.auth, request, resources),
            Backend::Staging => {
                self.staging.request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        _backend: &Backend,
        extension: &Extension,
        ctx: &mut Context<DispatchContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        use trussed::serde_extensions::ExtensionImpl;
        let (core, b) = (&mut ctx.core, &mut ctx.backends);
        match extension {
            Extension::Auth => ExtensionImpl::<AuthExtension>::extension_request_serialized(
                &mut self.auth,
                core,
                &mut b.auth,
                request,
                resources,
            ),
            Extension::Chunked => ExtensionImpl::<ChunkedExtension>::extension_request_serialized(
                &mut self.staging,
                core,
                &mut b.staging,
                request,
                resources,
            ),
            Extension::Hpke => ExtensionImpl::<HpkeExtension>::extension_request_serialized(
                &mut self.staging,
                core,
                &mut b.staging,
                request,
                resources,
            ),
            Extension::WrapKeyToFile => {
                ExtensionImpl::<WrapKeyToFileExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut b.staging,
                    request,
                    resources,
                )
            }
        }
    }
}

/// The backends, in the order the client asks them.
pub const BACKENDS: [BackendId<Backend>; 3] =
    [BackendId::Custom(Backend::Auth), BackendId::Custom(Backend::Staging), BackendId::Core];
