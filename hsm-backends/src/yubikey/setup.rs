//! `warrant yubikey setup`: replaces the default management key with a random one stored
//! PIN-protected on the card (as yubikey-agent does), changes the PIN and PUK, and refuses to
//! leave the default PIN or PUK in place unless told to.

use yubikey::MgmKey;
use zeroize::Zeroizing;

use super::store::{card_error, open_card};
use crate::Error;

const DEFAULT_PIN: &str = "123456";
const DEFAULT_PUK: &str = "12345678";

/// What setup is given.
pub struct SetupOptions {
    /// The card's serial; `None`: the one YubiKey present.
    pub serial: Option<u32>,
    /// The current PIN.
    pub pin: Zeroizing<String>,
    /// A new PIN (6-8 characters).
    pub new_pin: Option<Zeroizing<String>>,
    /// The current PUK.
    pub puk: Zeroizing<String>,
    /// A new PUK (6-8 characters).
    pub new_puk: Option<Zeroizing<String>>,
    /// Leave a default PIN or PUK in place (for test cards only).
    pub allow_default_pin_puk: bool,
}

/// What setup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// The card's serial.
    pub serial: u32,
    /// A new PIN-protected management key was stored (false: one was there already).
    pub management_key_replaced: bool,
    /// The PIN was changed.
    pub pin_changed: bool,
    /// The PUK was changed.
    pub puk_changed: bool,
}

fn check_new(what: &str, value: &Option<Zeroizing<String>>) -> Result<(), Error> {
    match value {
        Some(v) if !(6..=8).contains(&v.len()) => {
            Err(Error::Unsupported(format!("a new {what} must be 6 to 8 characters")))
        }
        _ => Ok(()),
    }
}

/// Sets the card up for warrant.
pub fn setup(options: &SetupOptions) -> Result<SetupReport, Error> {
    check_new("PIN", &options.new_pin)?;
    check_new("PUK", &options.new_puk)?;
    let final_pin = options.new_pin.as_ref().unwrap_or(&options.pin);
    let final_puk = options.new_puk.as_ref().unwrap_or(&options.puk);
    if !options.allow_default_pin_puk
        && (final_pin.as_str() == DEFAULT_PIN || final_puk.as_str() == DEFAULT_PUK)
    {
        return Err(Error::Unsupported(
            "refusing to leave the default PIN (123456) or PUK (12345678) in place: give new ones, or allow defaults explicitly (test cards only)"
                .into(),
        ));
    }
    let mut card = open_card(options.serial).map_err(|e| card_error("open the card", e))?;
    card.verify_pin(options.pin.as_bytes()).map_err(|e| card_error("verify the PIN", e))?;
    let management_key_replaced = match card.authenticate(MgmKey::default()) {
        Ok(()) => {
            MgmKey::generate()
                .set_protected(&mut card)
                .map_err(|e| card_error("store a PIN-protected management key", e))?;
            true
        }
        Err(_) => {
            let protected = MgmKey::get_protected(&mut card).map_err(|_| {
                Error::Unsupported(
                    "the card's management key is neither the default nor PIN-protected; reset its PIV applet (ykman piv reset) or use another card"
                        .into(),
                )
            })?;
            card.authenticate(protected)
                .map_err(|e| card_error("authenticate with the protected management key", e))?;
            false
        }
    };
    if let Some(new) = &options.new_puk {
        card.change_puk(options.puk.as_bytes(), new.as_bytes())
            .map_err(|e| card_error("change the PUK", e))?;
    }
    if let Some(new) = &options.new_pin {
        card.change_pin(options.pin.as_bytes(), new.as_bytes())
            .map_err(|e| card_error("change the PIN", e))?;
    }
    Ok(SetupReport {
        serial: card.serial().0,
        management_key_replaced,
        pin_changed: options.new_pin.is_some(),
        puk_changed: options.new_puk.is_some(),
    })
}
