//! `warrant yubikey`: preparing a YubiKey for warrantd (run while warrantd does not hold it).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::Output;
use crate::Error;

#[derive(Debug, Subcommand)]
pub(super) enum YubikeyCommand {
    /// Replace the default management key with a random one stored PIN-protected on the card,
    /// and change the PIN and PUK. Refuses to leave the default PIN or PUK in place unless
    /// --allow-default-pin-puk is given.
    Setup(SetupArgs),
}

#[derive(Debug, Args)]
pub(super) struct SetupArgs {
    /// The card's serial number (needed when several YubiKeys are present).
    #[arg(long)]
    serial: Option<u32>,
    /// File (mode 0600) with the current PIN (default: the factory PIN 123456).
    #[arg(long)]
    pin_file: Option<PathBuf>,
    /// File (mode 0600) with the new PIN, 6 to 8 characters.
    #[arg(long)]
    new_pin_file: Option<PathBuf>,
    /// File (mode 0600) with the current PUK (default: the factory PUK 12345678).
    #[arg(long)]
    puk_file: Option<PathBuf>,
    /// File (mode 0600) with the new PUK, 6 to 8 characters.
    #[arg(long)]
    new_puk_file: Option<PathBuf>,
    /// Leave the factory PIN or PUK in place (test cards only).
    #[arg(long)]
    allow_default_pin_puk: bool,
}

pub(super) fn run(cmd: YubikeyCommand, out: Output) -> Result<(), Error> {
    let YubikeyCommand::Setup(args) = cmd;
    setup(args, out)
}

#[cfg(feature = "yubikey")]
fn setup(args: SetupArgs, out: Output) -> Result<(), Error> {
    use serde_json::json;
    use warrant_hsm_backends::yubikey::{setup, SetupOptions};
    use warrant_hsm_backends::PinSource;
    use zeroize::Zeroizing;
    let read = |path: &Option<PathBuf>| path.as_ref().map(|p| PinSource::File(p.clone()).read()).transpose();
    let options = SetupOptions {
        serial: args.serial,
        pin: read(&args.pin_file)?.unwrap_or_else(|| Zeroizing::new("123456".into())),
        new_pin: read(&args.new_pin_file)?,
        puk: read(&args.puk_file)?.unwrap_or_else(|| Zeroizing::new("12345678".into())),
        new_puk: read(&args.new_puk_file)?,
        allow_default_pin_puk: args.allow_default_pin_puk,
    };
    let report = setup(&options)?;
    out.done(
        &format!(
            "YubiKey {} ready: management key {}, PIN {}, PUK {}",
            report.serial,
            if report.management_key_replaced {
                "replaced by a PIN-protected random key"
            } else {
                "already PIN-protected"
            },
            if report.pin_changed { "changed" } else { "unchanged" },
            if report.puk_changed { "changed" } else { "unchanged" },
        ),
        json!({
            "serial": report.serial,
            "management_key_replaced": report.management_key_replaced,
            "pin_changed": report.pin_changed,
            "puk_changed": report.puk_changed,
        }),
    );
    Ok(())
}

#[cfg(not(feature = "yubikey"))]
fn setup(_: SetupArgs, _: Output) -> Result<(), Error> {
    Err(Error::Usage(
        "this build of warrant has no YubiKey support (built without the `yubikey` feature)".into(),
    ))
}
